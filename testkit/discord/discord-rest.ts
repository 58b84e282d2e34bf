// HTTP plumbing of the Discord stand-in: routing, bodies, Discord's error bodies, fault answers and
// command-definition checks. The behaviour behind each route lives in discord.ts.
import http, { type IncomingMessage } from 'node:http';
import { invalidFormBody, isJsonObject, type FormError, type JsonObject, type UploadedFile } from './discord-model.ts';

export interface FaultSpec {
  method?: string;
  /** Tested against RecordedRequest.path (no /api/v10 prefix, no query). */
  path?: RegExp;
  /** 429 answers with Discord's rate-limit body and headers; other codes with `{message, code: 0}`. */
  status: number;
  /** How many matching requests to fail (default 1). */
  count?: number;
  /** Seconds, for 429 (default 0.05). */
  retryAfter?: number;
  /** Replace the error body (e.g. `{ message: 'Missing Permissions', code: 50013 }`). */
  body?: JsonObject;
}

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteContext {
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  files: UploadedFile[];
}

export interface Route {
  method: string;
  template: string;
  segments: string[];
  auth: boolean;
  handle(context: RouteContext): Answer;
}

export const errorBody = {
  unauthorized: { message: '401: Unauthorized', code: 0 },
  unknownRoute: { message: '404: Not Found', code: 0 },
  unknownChannel: { message: 'Unknown Channel', code: 10003 },
  unknownMessage: { message: 'Unknown Message', code: 10008 },
  unknownWebhook: { message: 'Unknown Webhook', code: 10015 },
  unknownApplication: { message: 'Unknown Application', code: 10002 },
  unknownInteraction: { message: 'Unknown interaction', code: 10062 },
  alreadyAcknowledged: { message: 'Interaction has already been acknowledged.', code: 40060 },
  missingAccess: { message: 'Missing Access', code: 50001 },
  missingPermissions: { message: 'Missing Permissions', code: 50013 },
  // Since 2023 Discord answers a guild the bot is not in like one that does not exist.
  unknownGuild: { message: 'Unknown Guild', code: 10004 },
  unknownMember: { message: 'Unknown Member', code: 10007 },
} as const;

export const fail = (status: number, body: JsonObject): Answer => ({ status, body });
export const formError = (problems: FormError[]): Answer => fail(400, invalidFormBody(problems));

// ---------------------------------------------------------------------------------------------

export function faultAnswer(spec: FaultSpec): Answer {
  if (spec.status !== 429) {
    return fail(spec.status, spec.body ?? { message: `${spec.status}: ${http.STATUS_CODES[spec.status] ?? 'Error'}`, code: 0 });
  }
  const retryAfter = spec.retryAfter ?? 0.05;
  return {
    status: 429,
    body: spec.body ?? { message: 'You are being rate limited.', retry_after: retryAfter, global: false },
    headers: {
      'retry-after': String(retryAfter),
      'x-ratelimit-limit': '5',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': ((Date.now() / 1000) + retryAfter).toFixed(3),
      'x-ratelimit-reset-after': String(retryAfter),
      'x-ratelimit-bucket': 'stand-in-bucket',
      'x-ratelimit-scope': 'user',
    },
  };
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function matchRoute(template: string[], segments: string[]): Record<string, string> | null {
  if (template.length !== segments.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < template.length; i++) {
    if (template[i].startsWith(':')) params[template[i].slice(1)] = segments[i];
    else if (template[i] !== segments[i]) return null;
  }
  return params;
}

export function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const maxBodyBytes = 25 * 1024 * 1024;

/**
 * JSON bodies, and multipart/form-data ones as Discord takes them: the message in the
 * `payload_json` part, each file in a `files[n]` part (bytes kept, so tests can read what was sent).
 */
export async function readBody(request: IncomingMessage): Promise<{ body: unknown; files: UploadedFile[] }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks);
  if (raw.length === 0) return { body: undefined, files: [] };
  const type = request.headers['content-type'] ?? '';
  const boundary = /multipart\/form-data;\s*boundary=(?:"([^"]+)"|([^;]+))/i.exec(type);
  if (!boundary) return { body: JSON.parse(raw.toString('utf8')), files: [] };

  const delimiter = `--${boundary[1] ?? boundary[2]}`;
  let body: unknown = {};
  const files: UploadedFile[] = [];
  for (const part of raw.toString('latin1').split(delimiter).slice(1)) {
    if (part.startsWith('--')) break;
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) continue;
    const head = part.slice(0, split);
    const content = part.slice(split + 4).replace(/\r\n$/, '');
    const name = /name="([^"]*)"/.exec(head)?.[1];
    const filename = /filename="([^"]*)"/.exec(head)?.[1];
    const contentType = /content-type:\s*([^\r\n;]+)/i.exec(head)?.[1]?.trim();
    if (filename !== undefined) {
      const data = Buffer.from(content, 'latin1');
      files.push({ field: name ?? '', name: filename, size: data.length, ...(contentType ? { contentType } : {}), data });
    } else if (name === 'payload_json') body = JSON.parse(Buffer.from(content, 'latin1').toString('utf8'));
  }
  return { body, files };
}

const commandName = /^[-_\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

/** Discord's own checks on command definitions, so a malformed builder fails here as it would live. */
export function commandProblems(definition: JsonObject, path: (string | number)[]): FormError[] {
  const problems: FormError[] = [];
  const type = typeof definition.type === 'number' ? definition.type : 1;
  const name = definition.name;
  if (typeof name !== 'string' || !commandName.test(name) || (type === 1 && name !== name.toLowerCase())) {
    problems.push({ path: [...path, 'name'], code: 'APPLICATION_COMMAND_INVALID_NAME', message: `Command name is invalid: ${String(name)}` });
  }
  if (type === 1) {
    const description = definition.description;
    if (typeof description !== 'string' || description.length < 1 || description.length > 100) {
      problems.push({ path: [...path, 'description'], code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
    }
  }
  const options = Array.isArray(definition.options) ? definition.options : [];
  if (options.length > 25) problems.push({ path: [...path, 'options'], code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
  options.forEach((option: unknown, index) => {
    // Options follow the same name/description rules as chat-input commands.
    problems.push(...commandProblems(isJsonObject(option) ? { ...option, type: 1 } : {}, [...path, 'options', index]));
  });
  return problems;
}
