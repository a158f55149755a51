/** Small helpers shared by the `/v1` route modules. */
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { orgCaller } from '../access';
import type { Principal } from '../context';
import { HttpError, camelize } from '../http';
import { actionFor } from '../rbac';

export type Handler = (req: Request, res: Response) => Promise<void> | void;
export type Methods = Partial<Record<'get' | 'post' | 'put' | 'delete', Handler>>;

/** `/v1` responses are camelCase at every depth (§3.5). */
export function send(res: Response, status: number, data: unknown): void {
  res.status(status).json(camelize(data));
}

/** `{data: [...]}` with each row shaped in turn; camelCase (§3.5) unless `asIs` (a wire shape that is final). */
export async function sendEach<T>(
  res: Response,
  rows: T[],
  wire: (row: T) => unknown,
  asIs = false,
): Promise<void> {
  const data = [];
  for (const row of rows) data.push(await wire(row));
  if (asIs) res.status(200).json({ data });
  else send(res, 200, { data });
}

export function noContent(res: Response): void {
  res.status(204).end();
}

/**
 * Registers a path: authentication first (so unsupported methods fail after it, §8.3), then the handlers, then
 * `405 Method "X" not allowed.` (or the view's own answer for other methods).
 */
export function route(
  r: Router,
  path: string,
  auth: RequestHandler,
  methods: Methods,
  otherMethod: (method: string) => HttpError = (m) => new HttpError(405, `Method "${m}" not allowed.`),
  /** Views with a fixed action run their permission check before answering 405 (§8.3). */
  check?: (req: Request) => void,
): void {
  const rt = r.route(path);
  rt.all(auth);
  // Express would answer HEAD with the GET handler; Phase has no action for HEAD (§8.3).
  rt.head((req: Request) => {
    check?.(req);
    throw otherMethod(req.method);
  });
  for (const [m, h] of Object.entries(methods) as Array<[keyof Methods, Handler]>) {
    rt[m]((req: Request, res: Response, _next: NextFunction) => h(req, res));
  }
  rt.all((req: Request) => {
    check?.(req);
    throw otherMethod(req.method);
  });
}

export function param(req: Request, name: string): string {
  const v = (req.params as Record<string, string | undefined>)[name];
  return v ?? '';
}

export type OrgHandler = (req: Request, res: Response, p: Principal) => Promise<void> | void;

/**
 * An org-level path (§5.1): every handler runs after the caller's `<resource>:<action>` check, the action given
 * by the method (GET read, POST create, PUT update, DELETE delete), and receives the caller.
 */
export function orgRoute(
  r: Router,
  path: string,
  auth: RequestHandler,
  resource: string,
  methods: Partial<Record<keyof Methods, OrgHandler>>,
): void {
  const wrapped: Methods = {};
  for (const [m, h] of Object.entries(methods) as Array<[keyof Methods, OrgHandler]>) {
    wrapped[m] = (req, res) => h(req, res, orgCaller(req, actionFor(req.method), resource));
  }
  route(r, path, auth, wrapped);
}
