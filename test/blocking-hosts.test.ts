// The blocking driver's one host-dependent limit: where the host has promise hooks
// (Node) it lets every pending continuation run before it waits; where it has none
// (Bun) it yields a fixed 16 times per phase, so a deeper chain goes on only after
// the next wait.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { bunPath, nodeTs } from './hosts';

const FIXTURE = path.join(__dirname, 'fixtures', 'blocking-await-depth.ts');
const run = promisify(execFile);

async function order(command: string, args: string[], depth: number): Promise<string[]> {
  const { stdout } = await run(command, [...args, FIXTURE, String(depth)], { cwd: path.join(__dirname, '..'), timeout: 20_000 });
  return JSON.parse(stdout) as string[];
}

test('Node: a chain of 40 awaits ends before the poll waits for a later timer', async () => {
  const [node, args] = nodeTs();
  expect(await order(node, args, 40)).toEqual(['after awaits', 'timer']);
});

test('Bun: a chain of 16 awaits ends before the wait; one of 20 ends after it (16 yields per phase)', async () => {
  expect(await order(bunPath(), [], 16)).toEqual(['after awaits', 'timer']);
  expect(await order(bunPath(), [], 20)).toEqual(['timer', 'after awaits']);
});
