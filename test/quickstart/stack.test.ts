/**
 * The quickstart deploys its own copy of the example stack (bin/quickstart-stack.ts: the shipped CLI does not import
 * examples/, lint forbids it), and the README says it deploys what examples/cdktf/stack.ts declares: the two
 * synthesise the same Terraform configuration, with the default props and with others.
 */
import { Testing } from '../../constructs/cdktf';
import { QuickstartStack as CliStack } from '../../bin/quickstart-stack';
import { QuickstartStack as ExampleStack } from '../../examples/cdktf/stack';

const synth = (Stack: typeof CliStack | typeof ExampleStack, props = {}): unknown =>
  JSON.parse(Testing.synth(new Stack(Testing.app(), 'quickstart', props)));

test.each([{}, { appName: 'shop', databaseUrl: 'postgres://shop@db/shop' }])(
  'bin/quickstart-stack.ts declares what examples/cdktf/stack.ts declares (props %j)',
  (props) => {
    const cli = synth(CliStack, props);
    expect(cli).toEqual(synth(ExampleStack, props));
    // (The comparison is of real configurations: an app, two secrets and the workload identity.)
    expect(Object.keys((cli as { resource: Record<string, unknown> }).resource).sort()).toEqual(
      expect.arrayContaining(['phase_app', 'phase_secret', 'phase_service_account']),
    );
  },
);
