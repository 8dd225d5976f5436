// The loop's contract (test/contract/cases.ts) over every combination of backend and
// driver, in this Node process: one describe per combination, one test per case.
// A combination this host cannot make fails its cases (nothing is skipped); a case
// that does not apply to a combination (fds on a backend that watches none, the fake
// clock on a real one) checks that reason on a fresh loop and says so in its name and
// in the output.
import { CASES, type Case } from './contract/cases';
import { COMBOS } from './contract/combos';
import { checkNotApplicable, notApplicable, runCase } from './contract/harness';
import { guardResources, newFds, openFds } from './helpers';

guardResources();

for (const combo of COMBOS) {
  describe(combo.name, () => {
    const counts = { ok: 0, failed: 0, 'n/a': 0 };
    const lines: string[] = [];
    let atStart: string[] = [];
    beforeAll(() => {
      atStart = openFds();
    });
    afterAll(() => {
      console.log([`${combo.name}: ${counts.ok} passed, ${counts.failed} failed, ${counts['n/a']} not applicable`, ...lines].join('\n'));
      // Every loop and fd the combination's cases opened is closed again.
      expect(newFds(atStart, openFds())).toEqual([]);
    });

    const table = CASES.map((c): [string, Case, string | null] => {
      const reason = notApplicable(combo, c);
      return [reason === null ? c.name : `${c.name} (not applicable: ${reason})`, c, reason];
    });
    test.each(table)('%s', async (_title, c, reason) => {
      if (reason !== null) {
        lines.push(`not applicable: ${combo.name} ${c.name}: ${reason}`);
        counts['n/a']++;
        expect(() => checkNotApplicable(combo, c)).not.toThrow();
        return;
      }
      const outcome = await runCase(combo, c);
      if (outcome.status === 'fail') {
        counts.failed++;
        lines.push(`FAIL ${combo.name} ${c.name}: ${outcome.message}`);
        throw outcome.error instanceof Error ? outcome.error : new Error(outcome.message);
      }
      expect(outcome.status).toBe('ok');
      counts.ok++;
    });
  });
}
