/** Small helpers shared by the `/v1` route modules. */
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { HttpError, camelize } from '../http';

export type Handler = (req: Request, res: Response) => Promise<void> | void;
export type Methods = Partial<Record<'get' | 'post' | 'put' | 'delete', Handler>>;

/** `/v1` responses are camelCase at every depth (§3.5). */
export function send(res: Response, status: number, data: unknown): void {
  res.status(status).json(camelize(data));
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
