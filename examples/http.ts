// A minimal HTTP/1.1 server on addHandler and sys: keep-alive, pipelined requests,
// Content-Length bodies, and one fixed response ("hello world") to every request.
// It runs as one loop on the main thread (guest or blocking driver), or as N worker
// threads that each own a blocking loop and their own listening socket on one port
// (SO_REUSEPORT: the kernel spreads new connections across the sockets).
//
//   npx tsx examples/http.ts                          # one loop, guest driver, 127.0.0.1:8080
//   npx tsx examples/http.ts --driver blocking        # one loop that owns the main thread
//   npx tsx examples/http.ts --workers 4              # 4 worker threads, one blocking loop each
//   npx tsx examples/http.ts --port 0 --stop-path /stop
//   HTTP_PORT=8081 HTTP_DRIVER=blocking HTTP_WORKERS=2 npx tsx examples/http.ts
//
// It stops cleanly on SIGINT or SIGTERM, or (one loop) on `POST <stop-path>` when
// started with one, then prints what it served. Under the blocking driver on the main thread the
// host's loop (which delivers signals to JavaScript) waits while the loop runs, so
// there the stop request is the way to stop it; a signal keeps its default action.
//
// As a module it exports the server (HttpServer, on any loop and listening fd),
// serveOneLoop and startWorkers, which bench/ and test/ use.

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { IOLoop, READ, WRITE, ERROR, sys } from '../src/index';

// ---------------------------------------------------------------- the protocol

/** Requests whose head (request line and headers) is longer are refused with 431. */
export const MAX_HEAD = 8 * 1024;
/** Requests whose body is longer are refused with 413. */
export const MAX_BODY = 1024 * 1024;
/** What every request gets. */
export const BODY = 'hello world';

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** A response with a Date header of `date` (an IMF-fixdate) and, if given, a Connection header. */
function response(status: string, body: string, connection: string | null, date: string): Uint8Array {
  const head = [`HTTP/1.1 ${status}`, `Date: ${date}`, `Content-Length: ${body.length}`, 'Content-Type: text/plain'];
  if (connection !== null) head.push(`Connection: ${connection}`);
  return ascii(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * The responses of the current second: an origin server with a clock sends Date
 * (RFC 9110, 6.6.1), and the bytes are made again only when the second changes.
 */
class Responses {
  /** HTTP/1.1 keep-alive (no Connection header needed). */
  ok: Uint8Array = new Uint8Array(0);
  /** HTTP/1.0 keep-alive. */
  okKeepAlive: Uint8Array = new Uint8Array(0);
  /** The last response on a connection that closes. */
  okClose: Uint8Array = new Uint8Array(0);
  stopping: Uint8Array = new Uint8Array(0);
  date = '';
  private until = 0;

  /** Makes the responses current for `nowMs` (epoch ms). */
  at(nowMs: number): this {
    if (nowMs < this.until) return this;
    this.until = (Math.floor(nowMs / 1000) + 1) * 1000;
    this.date = new Date(nowMs).toUTCString();
    this.ok = response('200 OK', BODY, null, this.date);
    this.okKeepAlive = response('200 OK', BODY, 'keep-alive', this.date);
    this.okClose = response('200 OK', BODY, 'close', this.date);
    this.stopping = response('200 OK', 'stopping\n', 'close', this.date);
    return this;
  }
}

/** Refusals: the connection closes after them. */
const REFUSALS = {
  400: ['400 Bad Request', 'bad request\n'],
  413: ['413 Content Too Large', 'body too large\n'],
  431: ['431 Request Header Fields Too Large', 'head too large\n'],
  501: ['501 Not Implemented', 'transfer codings are not supported\n'],
  505: ['505 HTTP Version Not Supported', 'HTTP/1.0 and HTTP/1.1 only\n'],
} as const;
type Refusal = keyof typeof REFUSALS;

const CR = 13;
const LF = 10;
const SP = 32;
const TAB = 9;
const COLON = 58;

/**
 * Whether data[at..at+name.length) is `name` (given in lower case), ignoring the
 * case of ASCII letters.
 */
function isName(data: Uint8Array, at: number, end: number, name: Uint8Array): boolean {
  if (end - at !== name.length) return false;
  for (let i = 0; i < name.length; i++) if ((data[at + i] | 0x20) !== name[i]) return false;
  return true;
}

const CONTENT_LENGTH = ascii('content-length');
const CONNECTION = ascii('connection');
const TRANSFER_ENCODING = ascii('transfer-encoding');
const HTTP_1 = ascii('HTTP/1.');
const POST = ascii('POST');

/** Where the header value data[at..end) has a comma-separated token `token` (lower case): Connection: keep-alive, close. */
function hasToken(data: Uint8Array, at: number, end: number, token: string): boolean {
  let i = at;
  while (i < end) {
    while (i < end && (data[i] === SP || data[i] === TAB || data[i] === 44)) i++;
    const start = i;
    while (i < end && data[i] !== 44) i++;
    let stop = i;
    while (stop > start && (data[stop - 1] === SP || data[stop - 1] === TAB)) stop--;
    if (stop - start === token.length) {
      let same = true;
      for (let k = 0; k < token.length && same; k++) same = (data[start + k] | 0x20) === token.charCodeAt(k);
      if (same) return true;
    }
  }
  return false;
}

/** One parsed request: where it ends, and what it asked of the connection. */
interface Parsed {
  /** Offset just past the request (its body included). */
  end: number;
  keepAlive: boolean;
  /** HTTP/1.0 (keep-alive must be said in the response). */
  http10: boolean;
  /** The request is `POST <stopPath>`. */
  stop: boolean;
}

/** What parseRequest reports: a request, "need more bytes", or a refusal. */
const NEED_MORE = 0;

/**
 * Parses the request that starts at data[at], up to `len`. Returns NEED_MORE when
 * the head or the body is not complete yet, a Refusal status for a request the
 * server will not serve, and otherwise fills `out` and returns 1. Lines end in
 * CRLF (a bare LF is accepted, as RFC 9112 allows); empty lines before the
 * request line are skipped.
 */
function parseRequest(data: Uint8Array, at: number, len: number, out: Parsed, stopPath: Uint8Array | null): number {
  let i = at;
  while (i < len && (data[i] === CR || data[i] === LF)) i++;
  // Request line: method SP target SP HTTP/1.x
  const lineStart = i;
  let sp1 = -1;
  let sp2 = -1;
  for (; i < len; i++) {
    const c = data[i];
    if (c === LF) break;
    if (c === SP) {
      if (sp1 < 0) sp1 = i;
      else if (sp2 < 0) sp2 = i;
      else return 400;
    }
  }
  if (i >= len) return i - at > MAX_HEAD ? 431 : NEED_MORE;
  const lineEnd = data[i - 1] === CR ? i - 1 : i;
  if (sp1 <= lineStart || sp2 <= sp1 + 1 || lineEnd - sp2 !== 9) return 400;
  for (let k = 0; k < 7; k++) if (data[sp2 + 1 + k] !== HTTP_1[k]) return 400;
  const minor = data[sp2 + 8];
  if (minor !== 48 && minor !== 49) return 505;
  const http10 = minor === 48;
  let stop = false;
  if (stopPath !== null && sp1 - lineStart === 4 && sp2 - sp1 - 1 === stopPath.length) {
    stop = true;
    for (let k = 0; k < 4 && stop; k++) stop = data[lineStart + k] === POST[k];
    for (let k = 0; k < stopPath.length && stop; k++) stop = data[sp1 + 1 + k] === stopPath[k];
  }
  i++;
  // Header lines up to the empty line.
  let contentLength = 0;
  let sawLength = false;
  let close = false;
  let keepAlive = false;
  for (;;) {
    const start = i;
    let colon = -1;
    for (; i < len; i++) {
      const c = data[i];
      if (c === LF) break;
      if (c === COLON && colon < 0) colon = i;
    }
    if (i >= len) return i - at > MAX_HEAD ? 431 : NEED_MORE;
    const end = data[i - 1] === CR && i - 1 >= start ? i - 1 : i;
    i++;
    if (end === start) break; // the empty line
    if (i - at > MAX_HEAD) return 431;
    if (colon <= start) return 400;
    let v = colon + 1;
    while (v < end && (data[v] === SP || data[v] === TAB)) v++;
    let vEnd = end;
    while (vEnd > v && (data[vEnd - 1] === SP || data[vEnd - 1] === TAB)) vEnd--;
    const nameLength = colon - start;
    if (nameLength === 14 && isName(data, start, colon, CONTENT_LENGTH)) {
      if (v === vEnd) return 400;
      let n = 0;
      for (let k = v; k < vEnd; k++) {
        const d = data[k] - 48;
        if (d < 0 || d > 9) return 400;
        n = n * 10 + d;
        if (n > MAX_BODY) return 413;
      }
      if (sawLength && n !== contentLength) return 400;
      sawLength = true;
      contentLength = n;
    } else if (nameLength === 10 && isName(data, start, colon, CONNECTION)) {
      if (hasToken(data, v, vEnd, 'close')) close = true;
      if (hasToken(data, v, vEnd, 'keep-alive')) keepAlive = true;
    } else if (nameLength === 17 && isName(data, start, colon, TRANSFER_ENCODING)) {
      return 501;
    }
  }
  if (len - i < contentLength) return NEED_MORE;
  out.end = i + contentLength;
  out.http10 = http10;
  out.keepAlive = !close && (http10 ? keepAlive : true);
  out.stop = stop;
  return 1;
}

// ---------------------------------------------------------------- the server

/** One accepted socket: the bytes of a request not complete yet, and what is left to write. */
class Connection {
  /** Bytes of an incomplete request (a copy), or null. */
  partial: Uint8Array | null = null;
  /** Bytes still to write (a copy), or null. */
  pending: Uint8Array | null = null;
  /** Close once `pending` is written. */
  closing = false;
  constructor(readonly fd: number) {}
}

/** What a server has done so far. */
export interface ServerStats {
  /** Connections accepted. */
  connections: number;
  /** Requests answered with the fixed response. */
  requests: number;
  /** Requests refused (400, 413, 431, 501, 505). */
  refused: number;
}

export interface HttpServerOptions {
  /** `POST <stopPath>` answers "stopping" and calls `onStop` (default: no such request). */
  stopPath?: string;
  onStop?: () => void;
}

/** Read buffer shared by every connection of every server on this thread (one loop runs one handler at a time). */
const readBuf = new Uint8Array(64 * 1024);
/** Where the responses to one read's requests are put together, when there is more than one. */
let outBuf = new Uint8Array(16 * 1024);

/**
 * An HTTP/1.1 server on one listening fd of one loop: an accept handler on the
 * listener and a READ handler per connection. Every request gets "hello world".
 * The listener is the caller's until close(), which closes it with every connection.
 */
export class HttpServer {
  readonly stats: ServerStats = { connections: 0, requests: 0, refused: 0 };
  private readonly conns = new Map<number, Connection>();
  private readonly stopPath: Uint8Array | null;
  private readonly parsed: Parsed = { end: 0, keepAlive: true, http10: false, stop: false };
  private readonly responses = new Responses();
  private closed = false;

  constructor(readonly loop: IOLoop, readonly listener: number, private readonly options: HttpServerOptions = {}) {
    this.stopPath = options.stopPath === undefined ? null : ascii(options.stopPath);
    loop.addHandler(listener, () => this.accept(), READ);
  }

  /** Connections open now. */
  get open(): number {
    return this.conns.size;
  }

  /** Stops listening and closes the listener and every connection. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loop.removeHandler(this.listener);
    sys.close(this.listener);
    for (const conn of [...this.conns.values()]) this.drop(conn);
  }

  private accept(): void {
    for (let fd = sys.accept(this.listener); fd >= 0; fd = sys.accept(this.listener)) {
      const conn = new Connection(fd);
      this.conns.set(fd, conn);
      this.stats.connections++;
      this.loop.addHandler(fd, (_fd, events) => this.ready(conn, events), READ);
    }
  }

  private drop(conn: Connection): void {
    // Only once, and never a later connection that got the same fd number.
    if (this.conns.get(conn.fd) !== conn) return;
    this.conns.delete(conn.fd);
    this.loop.removeHandler(conn.fd);
    sys.close(conn.fd);
  }

  private ready(conn: Connection, events: number): void {
    if (conn.pending !== null) {
      // Waiting for WRITE: the rest of the responses goes first; reading resumes after it.
      this.flush(conn);
      return;
    }
    if ((events & (READ | ERROR)) === 0) return;
    let n: number;
    try {
      n = sys.read(conn.fd, readBuf);
    } catch {
      this.drop(conn); // ECONNRESET and the like
      return;
    }
    if (n < 0) return;
    if (n === 0) {
      this.drop(conn);
      return;
    }
    let data = readBuf;
    let len = n;
    if (conn.partial !== null) {
      data = new Uint8Array(conn.partial.length + n);
      data.set(conn.partial);
      data.set(readBuf.subarray(0, n), conn.partial.length);
      len = data.length;
      conn.partial = null;
    }
    this.serve(conn, data, len);
  }

  /** Answers every complete request in data[0..len) with one write; keeps the rest. */
  private serve(conn: Connection, data: Uint8Array, len: number): void {
    const p = this.parsed;
    let at = 0;
    let first: Uint8Array | null = null;
    let outLen = 0;
    let stop = false;
    const responses = this.responses.at(Date.now());
    while (at < len) {
      const r = parseRequest(data, at, len, p, this.stopPath);
      if (r === NEED_MORE) {
        conn.partial = data.slice(at, len);
        break;
      }
      let reply: Uint8Array;
      if (r === 1) {
        at = p.end;
        if (p.stop) {
          reply = responses.stopping;
          conn.closing = stop = true;
        } else if (!p.keepAlive) {
          reply = responses.okClose;
          conn.closing = true;
          this.stats.requests++;
        } else {
          reply = p.http10 ? responses.okKeepAlive : responses.ok;
          this.stats.requests++;
        }
      } else {
        const [status, body] = REFUSALS[r as Refusal];
        reply = response(status, body, 'close', responses.date);
        conn.closing = true;
        this.stats.refused++;
      }
      // One response goes out as it is; more are put together in outBuf.
      if (first === null) first = reply;
      else {
        if (outLen === 0) outLen = append(0, first);
        outLen = append(outLen, reply);
      }
      if (conn.closing) break; // what follows a last request is not read
    }
    if (first !== null) this.send(conn, outLen === 0 ? first : outBuf.subarray(0, outLen));
    if (stop) this.options.onStop?.();
  }

  private send(conn: Connection, bytes: Uint8Array): void {
    let w: number;
    try {
      w = sys.write(conn.fd, bytes);
    } catch {
      this.drop(conn); // EPIPE, ECONNRESET: the peer is gone
      return;
    }
    if (w === bytes.length) {
      if (conn.closing) this.drop(conn);
      return;
    }
    conn.pending = bytes.slice(Math.max(w, 0));
    this.loop.updateHandler(conn.fd, WRITE);
  }

  private flush(conn: Connection): void {
    const bytes = conn.pending!;
    conn.pending = null;
    this.loop.updateHandler(conn.fd, READ);
    this.send(conn, bytes);
    // Requests that arrived meanwhile are in the socket: READ reports them.
  }
}

/** Appends bytes to outBuf at `at` (growing it); returns the new length. */
function append(at: number, bytes: Uint8Array): number {
  if (at + bytes.length > outBuf.length) {
    const grown = new Uint8Array(Math.max(outBuf.length * 2, at + bytes.length));
    grown.set(outBuf.subarray(0, at));
    outBuf = grown;
  }
  outBuf.set(bytes, at);
  return at + bytes.length;
}

// ---------------------------------------------------------------- one loop

export interface OneLoopOptions {
  host?: string;
  port?: number;
  driver?: 'guest' | 'blocking';
  stopPath?: string;
  /** Stop on SIGINT and SIGTERM (default: under the guest driver only; see the header). */
  signals?: boolean;
}

export interface RunningServer {
  port: number;
  loop: IOLoop;
  server: HttpServer;
  /** Asks the loop to stop (from the loop's thread). */
  stop(): void;
  /** Settles once the loop stopped and everything was closed, with what was served. */
  done: Promise<ServerStats>;
}

/** Listens on host:port with one loop on this thread and serves until stop(), a signal or a stop request. */
export function serveOneLoop(options: OneLoopOptions = {}): RunningServer {
  const driver = options.driver ?? 'guest';
  const loop = new IOLoop({ driver, makeCurrent: false });
  const listener = sys.listenTcp(options.host ?? '127.0.0.1', options.port ?? 8080);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    loop.stop();
  };
  const server = new HttpServer(loop, listener, { stopPath: options.stopPath, onStop: stop });
  const signals = (options.signals ?? driver === 'guest') ? ['SIGINT', 'SIGTERM'] : [];
  for (const s of signals) loop.addSignalHandler(s, stop);
  const done = loop.start().then(() => {
    for (const s of signals) loop.removeSignalHandler(s);
    server.close();
    loop.close();
    return server.stats;
  });
  return { port: sys.localPort(listener), loop, server, stop, done };
}

// ---------------------------------------------------------------- worker threads

export interface WorkersOptions {
  host?: string;
  /** 0: any free port (the first worker picks it, the others join it). */
  port?: number;
  workers: number;
  /** Node options of the workers (default: this process's, plus tsx when this file is TypeScript and tsx is not loaded). */
  execArgv?: string[];
}

export interface WorkerPool {
  port: number;
  /** Asks every worker to stop; settles when all have exited, with what each served. */
  stop(): Promise<ServerStats[]>;
}

/** What a worker is given: where to listen, and the read end of its stop pipe. */
interface WorkerData {
  httpWorker: true;
  host: string;
  port: number;
  stopFd: number;
}

type FromWorker = { listening: number } | { stats: ServerStats } | { error: string };

/** The body of a worker thread: its own blocking loop and its own SO_REUSEPORT listener. */
function workerMain(data: WorkerData): void {
  const loop = new IOLoop({ driver: 'blocking' });
  let listener: number;
  try {
    listener = sys.listenTcp(data.host, data.port, { reusePort: true });
  } catch (err) {
    loop.close();
    parentPort!.postMessage({ error: (err as Error).message } satisfies FromWorker);
    return;
  }
  const server = new HttpServer(loop, listener);
  // The stop pipe is the main thread's: this thread only watches its read end.
  loop.addHandler(data.stopFd, () => loop.stop(), READ);
  parentPort!.postMessage({ listening: sys.localPort(listener) } satisfies FromWorker);
  void loop.start().then(() => {
    loop.removeHandler(data.stopFd);
    server.close();
    loop.close();
    parentPort!.postMessage({ stats: server.stats } satisfies FromWorker);
  });
}

function defaultExecArgv(): string[] | undefined {
  if (!__filename.endsWith('.ts') || process.execArgv.some((a) => a.includes('tsx'))) return undefined;
  return [...process.execArgv, '--require', 'tsx/cjs'];
}

/** One worker: started, listening, and how to stop it. */
class ServerWorker {
  private readonly worker: Worker;
  private readonly stopPipe = sys.pipe();
  private stats: ServerStats | null = null;
  readonly listening: Promise<number>;
  readonly exited: Promise<ServerStats>;

  constructor(host: string, port: number, execArgv: string[] | undefined) {
    const data: WorkerData = { httpWorker: true, host, port, stopFd: this.stopPipe[0] };
    this.worker = new Worker(__filename, { workerData: data, execArgv });
    this.listening = new Promise((resolve, reject) => {
      this.worker.on('message', (m: FromWorker) => {
        if ('listening' in m) resolve(m.listening);
        else if ('stats' in m) this.stats = m.stats;
        else reject(new Error(`worker: ${m.error}`));
      });
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before it listened`)));
    });
    this.exited = new Promise((resolve, reject) => {
      this.worker.once('exit', (code) => {
        for (const fd of this.stopPipe) sys.close(fd);
        if (code === 0 && this.stats !== null) resolve(this.stats);
        else reject(new Error(`worker exited with ${code}${this.stats === null ? ' and no stats' : ''}`));
      });
    });
    this.exited.catch(() => {}); // seen by whoever awaits stop()
  }

  stop(): void {
    try {
      sys.write(this.stopPipe[1], new Uint8Array([1]));
    } catch {
      // the pipe is closed: the worker has exited
    }
  }

  /** Ends a worker that never started listening. */
  async kill(): Promise<void> {
    await this.worker.terminate();
    await this.exited.catch(() => {});
  }
}

/**
 * Starts `workers` worker threads serving host:port, each with its own blocking
 * loop and its own listening socket (SO_REUSEPORT). Resolves once all listen.
 */
export async function startWorkers(options: WorkersOptions): Promise<WorkerPool> {
  const host = options.host ?? '127.0.0.1';
  const execArgv = options.execArgv ?? defaultExecArgv();
  const workers: ServerWorker[] = [];
  try {
    workers.push(new ServerWorker(host, options.port ?? 8080, execArgv));
    const port = await workers[0].listening;
    for (let i = 1; i < options.workers; i++) workers.push(new ServerWorker(host, port, execArgv));
    await Promise.all(workers.map((w) => w.listening));
    return {
      port,
      stop: () => {
        for (const w of workers) w.stop();
        return Promise.all(workers.map((w) => w.exited));
      },
    };
  } catch (err) {
    for (const w of workers) w.stop();
    await Promise.all(workers.map((w) => w.kill()));
    throw err;
  }
}

// ---------------------------------------------------------------- the command line

function option(name: string, env: string): string | undefined {
  const argv = process.argv.slice(2);
  const i = argv.indexOf(`--${name}`);
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  return eq !== undefined ? eq.slice(name.length + 3) : process.env[env];
}

async function cli(): Promise<void> {
  const host = option('host', 'HTTP_HOST') ?? '127.0.0.1';
  const port = Number(option('port', 'HTTP_PORT') ?? 8080);
  const workers = Number(option('workers', 'HTTP_WORKERS') ?? 0);
  const driver = option('driver', 'HTTP_DRIVER') ?? 'guest';
  const stopPath = option('stop-path', 'HTTP_STOP_PATH');
  if (driver !== 'guest' && driver !== 'blocking') throw new Error(`--driver must be guest or blocking, got '${driver}'`);
  if (workers > 0 && stopPath !== undefined) throw new Error('--stop-path is for one loop; worker loops stop on SIGINT or SIGTERM');
  if (workers > 0) {
    const pool = await startWorkers({ host, port, workers });
    console.log(`serving http://${host}:${pool.port}/ with ${workers} worker loops (SO_REUSEPORT); Ctrl-C stops`);
    // The main thread's host loop is free: it takes the signals and tells the workers.
    const stop = (): void => {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      void pool.stop().then((all) => {
        all.forEach((s, i) => console.log(`worker ${i}: ${s.connections} connections, ${s.requests} requests`));
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return;
  }
  const running = serveOneLoop({ host, port, driver, stopPath });
  const how = driver === 'guest' ? 'Ctrl-C stops' : stopPath ? `POST ${stopPath} stops` : 'no --stop-path: Ctrl-C ends the process';
  console.log(`serving http://${host}:${running.port}/ with one loop (${driver} driver); ${how}`);
  const stats = await running.done;
  console.log(`stopped: ${stats.connections} connections, ${stats.requests} requests`);
}

if (!isMainThread && (workerData as WorkerData | undefined)?.httpWorker === true) {
  workerMain(workerData as WorkerData);
} else if (require.main === module) {
  cli().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
