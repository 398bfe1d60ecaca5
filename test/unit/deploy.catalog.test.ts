/**
 * functions/catalog.ts is the one list of the functions the deploy ships: functions/index.ts must
 * export exactly its entry points. The exports are read with the TypeScript compiler (loading the
 * functions' code would run their start-up).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { entryPoints, httpFunctions, topicFunctions } from '../../functions/catalog';

const root = path.resolve(__dirname, '../..');

/** The names a module exports, from its own text (named re-exports need no other file). */
function exportsOf(file: string): string[] {
  const program = ts.createProgram([file], { noResolve: true, noLib: true, types: [], noEmit: true });
  const source = program.getSourceFile(file);
  const checker = program.getTypeChecker();
  const module = source && checker.getSymbolAtLocation(source);
  if (!module) throw new Error(`${file}: not a module`);
  return checker.getExportsOfModule(module).map((s) => s.getName());
}

describe('functions/catalog.ts', () => {
  it('lists exactly the entry points functions/index.ts exports', () => {
    const exported = exportsOf(path.join(root, 'functions/index.ts'));
    expect([...exported].sort()).toEqual([...entryPoints].sort());
  });

  it('names a Consul policy file that exists for each topic function, and pairs HTTP entry points with one', () => {
    for (const spec of Object.values(topicFunctions)) {
      expect(existsSync(path.join(root, 'infra-scripts/acl', spec.consulPolicy))).toBe(true);
    }
    for (const spec of Object.values(httpFunctions))
      expect(Object.keys(topicFunctions)).toContain(spec.sameAs);
  });

  it('gives the force-leave token (operator = "write") to one function at most, and to no HTTP entry', () => {
    const holders = Object.entries(topicFunctions).filter(([, spec]) => spec.forceLeave);
    expect(holders.map(([name]) => name)).toEqual(['instanceEvents']);
    for (const spec of Object.values(httpFunctions))
      expect(topicFunctions[spec.sameAs].forceLeave).toBe(false);
  });

  it('has one reporting and one acting HTTP entry point, invoked by different lists', () => {
    const http = Object.values(httpFunctions);
    expect(http.filter((s) => s.acts).map((s) => s.invokers)).toEqual(['actInvokers']);
    expect(http.filter((s) => !s.acts).map((s) => s.invokers)).toEqual(['invokers']);
  });
});
