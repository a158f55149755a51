/**
 * The level-1 bindings under constructs/provider are generated from the schema the provider serves
 * (GetProviderSchema): this fails when the files and the schema drift apart, and checks the generator against the
 * schema itself, so a new attribute, block or type cannot go missing from the bindings.
 */
import { resolve } from 'node:path';
import { drift, generate, servedSchema, type WireBlock } from '../../scripts/generate-constructs';
import * as l1 from '../../constructs/provider';

const root = resolve(__dirname, '..', '..');

describe('generated level-1 bindings', () => {
  test('constructs/provider is exactly what `npm run generate:constructs` writes from the served schema', async () => {
    const files = generate(await servedSchema(), root);
    expect(drift(files, root)).toEqual([]);
  });

  test('a change to the schema shows up as drift', async () => {
    const schema = await servedSchema();
    const app = schema.resource_schemas.phase_app.block;
    const changed = {
      ...schema,
      resource_schemas: {
        ...schema.resource_schemas,
        phase_app: {
          block: {
            ...app,
            attributes: [
              ...app.attributes,
              {
                ...app.attributes[0],
                name: 'colour',
                description: 'new',
                required: false,
                optional: true,
                computed: false,
              },
            ],
          } satisfies WireBlock,
        },
      },
    };
    expect(drift(generate(changed, root), root)).toEqual(['constructs/provider/app.ts (differs)']);
  });

  test('one class per type the provider serves, each carrying its Terraform type', async () => {
    const schema = await servedSchema();
    const classes = Object.values(l1).flatMap((ns) =>
      Object.values(ns as Record<string, unknown>).filter(
        (v): v is { tfResourceType: string; name: string } =>
          typeof v === 'function' && 'tfResourceType' in v,
      ),
    );
    const byName = (prefix: string) =>
      classes
        .filter((c) => c.name.startsWith(prefix))
        .map((c) => c.tfResourceType)
        .sort();
    expect(byName('Data')).toEqual(Object.keys(schema.data_source_schemas).sort());
    expect(byName('Ephemeral')).toEqual(Object.keys(schema.ephemeral_resource_schemas).sort());
    const resources = classes
      .filter((c) => !/^(Data|Ephemeral)/.test(c.name) && c.tfResourceType !== 'phase')
      .map((c) => c.tfResourceType)
      .sort();
    expect(resources).toEqual(Object.keys(schema.resource_schemas).sort());
  });
});
