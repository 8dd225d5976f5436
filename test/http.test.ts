// examples/http.ts: the HTTP/1.1 server on one guest loop in this thread
// (keep-alive, pipelining, bodies, Connection: close, refusals, the stop request),
// and on four worker threads that each own a blocking loop and a listening socket
// on one port (SO_REUSEPORT). Clients are node:net and node:http in this thread.
import * as http from 'node:http';
import * as net from 'node:net';
import { BODY, serveOneLoop, startWorkers, type RunningServer } from '../examples/http';
import { guardResources } from './helpers';

guardResources();

/** A response as read off the wire. */
interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Parses the complete responses at the start of `buf` (Content-Length framing);
 * returns them and how many bytes they took.
 */
function parseReplies(buf: Buffer): { replies: Reply[]; used: number } {
  const replies: Reply[] = [];
  let at = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', at);
    if (headEnd < 0) break;
    const [statusLine, ...lines] = buf.toString('latin1', at, headEnd).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length']);
    if (!Number.isInteger(length)) throw new Error(`no Content-Length in ${JSON.stringify(statusLine)}`);
    if (buf.length < headEnd + 4 + length) break;
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    if (m === null) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    replies.push({ status: Number(m[1]), headers, body: buf.toString('latin1', headEnd + 4, headEnd + 4 + length) });
    at = headEnd + 4 + length;
  }
  return { replies, used: at };
}

/** A client connection that collects responses and says when the server closed it. */
class Client {
  readonly socket: net.Socket;
  private buf = Buffer.alloc(0);
  private readonly replies: Reply[] = [];
  private waiter: (() => void) | null = null;
  ended = false;
  readonly connected: Promise<void>;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      const { replies, used } = parseReplies(this.buf);
      this.buf = this.buf.subarray(used);
      this.replies.push(...replies);
      this.waiter?.();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  send(raw: string | Buffer): void {
    this.socket.write(raw);
  }

  /** The next `n` responses (fails if the server closes first). */
  async take(n: number): Promise<Reply[]> {
    while (this.replies.length < n) {
      if (this.ended) throw new Error(`the server closed after ${this.replies.length} of ${n} responses`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
    return this.replies.splice(0, n);
  }

  /** Resolves when the server has closed its side (after the responses so far). */
  async serverClosed(): Promise<void> {
    while (!this.ended) {
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
  }

  async close(): Promise<void> {
    this.socket.end();
    this.socket.destroySoon();
    await this.closed;
  }
}

const GET = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

function expectHello(r: Reply): void {
  expect(r.status).toBe(200);
  expect(r.body).toBe(BODY);
  expect(r.headers['content-length']).toBe(String(BODY.length));
  expect(r.headers.date).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
}

describe('one loop (guest driver) in this thread', () => {
  let running: RunningServer;
  beforeEach(() => {
    running = serveOneLoop({ port: 0, stopPath: '/stop', signals: false });
  });
  afterEach(async () => {
    running.stop();
    await running.done;
  });

  test('keep-alive: 100 requests one after another on one connection', async () => {
    const c = new Client(running.port);
    await c.connected;
    for (let i = 0; i < 100; i++) {
      c.send(`GET /${i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      const [r] = await c.take(1);
      expectHello(r);
      expect(r.headers.connection).toBeUndefined();
    }
    await c.close();
    expect(running.server.stats).toMatchObject({ connections: 1, requests: 100, refused: 0 });
  });

  test('pipelining: 100 requests in one write get 100 responses, in one connection', async () => {
    const c = new Client(running.port);
    c.send(GET.repeat(100));
    const replies = await c.take(100);
    replies.forEach(expectHello);
    // Pipelined again, in pieces cut inside request lines and headers.
    const all = Buffer.from(GET.repeat(100));
    for (let at = 0; at < all.length; at += 97) c.send(all.subarray(at, at + 97));
    (await c.take(100)).forEach(expectHello);
    await c.close();
    expect(running.server.stats).toMatchObject({ connections: 1, requests: 200 });
  });

  test('Content-Length bodies are read and skipped, also when they come in pieces and between pipelined requests', async () => {
    const c = new Client(running.port);
    const body = 'x'.repeat(5000);
    c.send(`POST /a HTTP/1.1\r\nHost: h\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 100)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    c.send(body.slice(100));
    expectHello((await c.take(1))[0]);
    c.send(`POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nGET ${GET}PUT /c HTTP/1.1\r\nContent-Length:  3 \r\n\r\nabc${GET}`);
    const replies = await c.take(4);
    replies.forEach(expectHello);
    await c.close();
    expect(running.server.stats.requests).toBe(5);
  });

  test('Connection: close gets its response, with Connection: close, and then the server closes', async () => {
    const c = new Client(running.port);
    c.send(`${GET}GET / HTTP/1.1\r\nConnection: Keep-Alive, Close\r\n\r\n${GET}`);
    const [first, last] = await c.take(2);
    expectHello(first);
    expectHello(last);
    expect(last.headers.connection).toBe('close');
    await c.serverClosed();
    await c.close();
    // The request after the last one is not served.
    expect(running.server.stats).toMatchObject({ requests: 2 });
    expect(running.server.open).toBe(0);
  });

  test('HTTP/1.0 closes unless it asks for keep-alive', async () => {
    const c = new Client(running.port);
    c.send('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const [kept] = await c.take(1);
    expectHello(kept);
    expect(kept.headers.connection).toBe('keep-alive');
    c.send('GET / HTTP/1.0\r\n\r\n');
    const [closing] = await c.take(1);
    expect(closing.headers.connection).toBe('close');
    await c.serverClosed();
    await c.close();
  });

  test.each([
    ['a malformed request line', 'GET /\r\n\r\n', 400],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n', 400],
    ['a bad Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n', 400],
    ['two different Content-Lengths', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
    ['a chunked body', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 501],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n', 400],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\n\r\n', 505],
    ['a body over the limit', 'POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n', 413],
    ['a head over the limit', `GET / HTTP/1.1\r\nX: ${'y'.repeat(9000)}`, 431],
  ])('%s is refused and the connection closed', async (_what, raw, status) => {
    const c = new Client(running.port);
    c.send(raw);
    const [r] = await c.take(1);
    expect(r.status).toBe(status);
    expect(r.headers.connection).toBe('close');
    await c.serverClosed();
    await c.close();
    expect(running.server.stats).toMatchObject({ requests: 0, refused: 1 });
  });

  test('a client that resets its connection is dropped, and the server goes on', async () => {
    const c = new Client(running.port);
    c.send('GET / HTTP/1.1\r\n');
    await new Promise((resolve) => setTimeout(resolve, 20));
    c.socket.resetAndDestroy();
    await c.closed;
    const d = new Client(running.port);
    d.send(GET);
    expectHello((await d.take(1))[0]);
    await d.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(running.server.open).toBe(0);
  });

  test('POST to the stop path answers and stops the loop, which closes every connection and the listener', async () => {
    const idle = new Client(running.port);
    await idle.connected;
    const c = new Client(running.port);
    c.send('POST /stop HTTP/1.1\r\nContent-Length: 0\r\n\r\n');
    const [r] = await c.take(1);
    expect(r.status).toBe(200);
    expect(r.body).toBe('stopping\n');
    const stats = await running.done;
    expect(stats).toMatchObject({ connections: 2, requests: 0 });
    await idle.serverClosed();
    await Promise.all([idle.close(), c.close()]);
    await expect(new Promise((resolve, reject) => net.connect(running.port, '127.0.0.1').once('error', reject).once('connect', resolve)))
      .rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('four worker threads, one blocking loop each, one port (SO_REUSEPORT)', () => {
  test('400 connections are all served, every worker gets some, and keep-alive works; the workers exit', async () => {
    const pool = await startWorkers({ port: 0, workers: 4, execArgv: ['--require', 'tsx/cjs'] });
    let stats;
    try {
      // 400 requests, each on its own connection, 40 at a time: Connection: close, so
      // the server closes each after its response (and the agent never reuses one).
      const agent = new http.Agent({ keepAlive: false, maxSockets: 40 });
      const get = (i: number): Promise<{ status: number; body: string; connection?: string }> =>
        new Promise((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: pool.port, path: `/${i}`, agent, headers: { Connection: 'close' } }, (res) => {
            let body = '';
            res.setEncoding('latin1');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
          }).on('error', reject);
        });
      const results = await Promise.all(Array.from({ length: 400 }, (_, i) => get(i)));
      agent.destroy();
      for (const r of results) expect(r).toEqual({ status: 200, body: BODY, connection: 'close' });

      // Keep-alive on the pool: one connection, 100 requests pipelined, then 100 in turn.
      const c = new Client(pool.port);
      c.send(GET.repeat(100));
      (await c.take(100)).forEach(expectHello);
      for (let i = 0; i < 100; i++) {
        c.send(GET);
        expectHello((await c.take(1))[0]);
      }
      await c.close();
    } finally {
      stats = await pool.stop();
    }
    expect(stats).toHaveLength(4);
    const total = stats.reduce((t, s) => ({ connections: t.connections + s.connections, requests: t.requests + s.requests }), { connections: 0, requests: 0 });
    expect(total).toEqual({ connections: 401, requests: 600 });
    for (const s of stats) {
      expect(s.connections).toBeGreaterThan(0);
      expect(s.refused).toBe(0);
    }
  }, 20_000);
});

test('startWorkers rejects when a worker cannot listen (a socket without SO_REUSEPORT holds the port), and leaves nothing open', async () => {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    await expect(startWorkers({ port, workers: 2, execArgv: ['--require', 'tsx/cjs'] })).rejects.toThrow(/EADDRINUSE/);
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
}, 20_000);
