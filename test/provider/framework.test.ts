/** The schema framework on its own: planning rules, validation diagnostics and declaration checks. */
import { planObject } from '../../provider/framework/plan';
import { checkSchema, validateBlock, type BlockDef } from '../../provider/framework/schema';
import type { Diagnostic } from '../../provider/framework/diagnostics';
import { UNKNOWN, Unknown, type TfObject } from '../../provider/framework/types';
import { maxLength } from '../../provider/phase/values';

const block: BlockDef = {
  attributes: {
    id: { type: 'string', computed: true, description: 'id', planModifiers: ['useStateForUnknown'] },
    name: { type: 'string', required: true, description: 'name', validators: [maxLength(5)] },
    parent: { type: 'string', required: true, description: 'parent', planModifiers: ['requiresReplace'] },
    path: { type: 'string', optional: true, computed: true, default: '/', description: 'path' },
    secret_wo: { type: 'string', optional: true, writeOnly: true, description: 'wo' },
    version: { type: 'number', computed: true, description: 'version' },
  },
  blocks: {
    item: {
      nesting: 'LIST',
      maxItems: 1,
      block: { attributes: { v: { type: 'string', required: true, description: 'v' } } },
    },
  },
};

const cfg = (o: TfObject): TfObject => ({
  id: null,
  path: null,
  secret_wo: null,
  version: null,
  item: [],
  ...o,
});

describe('planning', () => {
  it('plans a create: computed unknown, defaults applied, write-only null', () => {
    const config = cfg({ name: 'a', parent: 'p', secret_wo: 's' });
    const { planned, requiresReplace } = planObject(block, null, config, config);
    expect(planned.id).toBeInstanceOf(Unknown);
    expect(planned.version).toBeInstanceOf(Unknown);
    expect(planned.path).toBe('/');
    expect(planned.secret_wo).toBeNull();
    expect(requiresReplace).toEqual([]);
  });

  it('keeps prior computed values when nothing changed, and marks them unknown on change unless useStateForUnknown', () => {
    const prior = { id: 'i1', name: 'a', parent: 'p', path: '/', secret_wo: null, version: 3, item: [] };
    const same = planObject(
      block,
      prior,
      { ...prior, secret_wo: 'x' },
      cfg({ name: 'a', parent: 'p', secret_wo: 'x' }),
    );
    expect(same.planned).toEqual(prior);
    const renamed = planObject(block, prior, { ...prior, name: 'b' }, cfg({ name: 'b', parent: 'p' }));
    expect(renamed.planned.id).toBe('i1');
    expect(renamed.planned.version).toBeInstanceOf(Unknown);
    expect(renamed.requiresReplace).toEqual([]);
  });

  it('asks for replacement when a requires-replace attribute changes, with every computed value new', () => {
    const prior = { id: 'i1', name: 'a', parent: 'p', path: '/', secret_wo: null, version: 3, item: [] };
    const moved = planObject(block, prior, { ...prior, parent: 'q' }, cfg({ name: 'a', parent: 'q' }));
    expect(moved.requiresReplace).toEqual([['parent']]);
    expect(moved.planned.id).toBeInstanceOf(Unknown);
    const unknownParent = planObject(
      block,
      prior,
      { ...prior, parent: UNKNOWN },
      cfg({ name: 'a', parent: UNKNOWN }),
    );
    expect(unknownParent.requiresReplace).toEqual([['parent']]);
  });

  it('resets an optional+computed attribute with a default when the configuration drops it', () => {
    const prior = { id: 'i1', name: 'a', parent: 'p', path: '/x', secret_wo: null, version: 3, item: [] };
    const { planned } = planObject(block, prior, prior, cfg({ name: 'a', parent: 'p' }));
    expect(planned.path).toBe('/');
    expect(planned.version).toBeInstanceOf(Unknown);
  });
});

describe('validation', () => {
  it('reports missing required values, validator failures and block counts at their paths', () => {
    const diags: Diagnostic[] = [];
    validateBlock(block, cfg({ name: 'toolong', parent: null, item: [{ v: 'a' }, { v: null }] }), [], diags);
    expect(diags.map((d) => [d.summary, d.path])).toEqual(
      expect.arrayContaining([
        ['Missing required argument', ['parent']],
        ['Value too long', ['name']],
        ['Too many blocks', ['item']],
        ['Missing required argument', ['item', 1, 'v']],
      ]),
    );
  });

  it('skips validators on unknown values and refuses values for computed-only attributes', () => {
    const diags: Diagnostic[] = [];
    validateBlock(block, cfg({ name: UNKNOWN, parent: 'p', version: 4 }), [], diags);
    expect(diags.map((d) => [d.summary, d.path])).toEqual([['Invalid configuration', ['version']]]);
  });

  it('rejects declarations Terraform would refuse', () => {
    const bad: BlockDef = {
      attributes: {
        a: { type: 'string', description: 'no flags' },
        b: { type: 'string', required: true, computed: true, description: 'required+computed' },
        c: { type: 'string', computed: true, writeOnly: true, description: 'computed write-only' },
        d: { type: 'string', optional: true, default: 'x', description: 'default without computed' },
      },
      blocks: {
        s: {
          nesting: 'SET',
          block: {
            attributes: { w: { type: 'string', optional: true, writeOnly: true, description: 'in set' } },
          },
        },
      },
    };
    const problems = checkSchema({ version: 0, block: bad }, 't');
    expect(problems).toHaveLength(5);
    expect(checkSchema({ version: 0, block }, 'ok')).toEqual([]);
  });
});
