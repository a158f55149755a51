/**
 * The stack `phase-bridge quickstart` deploys: an app, two secrets, and a workload identity (service account, access
 * to Development, a rotating token exported as a sensitive output). Host and token come from PHASE_HOST /
 * PHASE_TOKEN at plan time, so no credential is written into the synthesised JSON.
 *
 * It declares exactly what examples/cdktf/stack.ts (the example to copy into your own project) declares; the CLI
 * keeps its own copy because it ships without examples/ (lint forbids bin/ importing them), and
 * test/quickstart/stack.test.ts checks that the two synthesise the same Terraform configuration.
 */
import type { Construct } from 'constructs';
import { TerraformStack } from '../constructs/cdktf';
import { PhaseApp, PhaseProvider, WorkloadIdentity } from '../constructs';

export interface QuickstartStackProps {
  /** App name (default `quickstart`). */
  appName?: string;
  /** Value for DATABASE_URL; a write-only attribute, so it never reaches plan or state. */
  databaseUrl?: string;
}

export class QuickstartStack extends TerraformStack {
  readonly app: PhaseApp;
  readonly workload: WorkloadIdentity;

  constructor(scope: Construct, id: string, props: QuickstartStackProps = {}) {
    super(scope, id);
    new PhaseProvider(this, 'phase');
    const name = props.appName ?? 'quickstart';
    this.app = new PhaseApp(this, 'app', { name, description: 'declared with CDKTF' });
    this.app.addSecret('Development', 'DATABASE_URL', {
      valueWo: props.databaseUrl ?? 'postgres://app:dev@127.0.0.1:5432/app',
      comment: 'write-only: absent from state',
    });
    // `$${` escapes Terraform interpolation: Phase resolves the reference, not Terraform.
    this.app.addSecret('Development', 'GREETING', {
      value: 'hello from phase-bridge (db: $${DATABASE_URL})',
    });
    this.workload = new WorkloadIdentity(this, 'agent', {
      name: `${name}-agent`,
      access: [{ app: this.app, environments: ['Development'] }],
      token: { name: 'agent', rotateAfter: '720h' },
      outputToken: true,
    });
  }
}
