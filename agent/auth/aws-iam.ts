/**
 * The `awsIam` part of an AWS IAM login, exactly as Phase's clients build it (spec phase-external-identities.md §2): a
 * SigV4-signed `POST <STS endpoint>` with `Action=GetCallerIdentity&Version=2011-06-15`, its URL, signed headers and
 * body base64-encoded. The server forwards it to STS, which answers with the caller's ARN; the credentials themselves
 * never leave the agent (only a signature that is valid for a few minutes, for this one request).
 *
 * Imported on demand by agent/auth/login.ts, only for `--auth aws-iam` (the agent's memory budget).
 */
import type { Transport } from '../../core/http';
import { DEFAULT_STS_ENDPOINT } from '../../core/identity';
import { AwsCredentialChain, type AwsCredentials } from './aws-credentials';
import { signV4 } from './sigv4';

export const GET_CALLER_IDENTITY = 'Action=GetCallerIdentity&Version=2011-06-15';
const CONTENT_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';

export interface AwsIamRequest {
  httpRequestMethod: 'POST';
  httpRequestUrl: string;
  httpRequestHeaders: string;
  httpRequestBody: string;
}

/** The region (AWS_REGION, AWS_DEFAULT_REGION, else us-east-1) and the STS endpoint for it. */
export function stsTarget(env: NodeJS.ProcessEnv, override?: string): { region: string; endpoint: string } {
  const configured = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (override) {
    // A regional endpoint names its region; anything else (a test stand-in, a VPC endpoint) signs for the configured one.
    const host = new URL(override).hostname;
    const m = /^sts\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host);
    const region = m ? m[1] : host === 'sts.amazonaws.com' ? 'us-east-1' : configured || 'us-east-1';
    return { region, endpoint: override.replace(/\/+$/, '') };
  }
  const region = configured || 'us-east-1';
  return {
    region,
    endpoint: region === 'us-east-1' ? DEFAULT_STS_ENDPOINT : `https://sts.${region}.amazonaws.com`,
  };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export class AwsIamSigner {
  private readonly chain: AwsCredentialChain;

  constructor(
    private readonly opts: { env: NodeJS.ProcessEnv; stsEndpoint?: string; transport?: Transport },
  ) {
    this.chain = new AwsCredentialChain({ env: opts.env, transport: opts.transport });
  }

  /** Resolves credentials and signs a GetCallerIdentity request for the endpoint; `source` says where the keys came from. */
  async request(
    now = new Date(),
  ): Promise<{ awsIam: AwsIamRequest; source: string; region: string; endpoint: string }> {
    const creds: AwsCredentials = await this.chain.resolve();
    const { region, endpoint } = stsTarget(this.opts.env, this.opts.stsEndpoint);
    const signed = signV4(
      { method: 'POST', url: endpoint, headers: { 'Content-Type': CONTENT_TYPE }, body: GET_CALLER_IDENTITY },
      creds,
      { region, service: 'sts', date: now },
    );
    return {
      awsIam: {
        httpRequestMethod: 'POST',
        httpRequestUrl: b64(endpoint),
        httpRequestHeaders: b64(JSON.stringify(signed.headers)),
        httpRequestBody: b64(GET_CALLER_IDENTITY),
      },
      source: creds.source,
      region,
      endpoint,
    };
  }
}
