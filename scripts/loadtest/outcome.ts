import type { LoadtestResult, RunOutcome } from "./result-schema.js";
import { unitsOf } from "./stage-result.js";


/** What a failed connect or request most often means, by the text of its error. */
const HINTS: Array<[RegExp, string]> = [
  [/ECONNREFUSED/, "nothing is listening there: is the server running, and are --url and its port right?"],
  [/ENOTFOUND|EAI_AGAIN/, "the host name does not resolve: check --url"],
  [/Authentication error|TOKEN_|Unauthorized|\b40[13]\b/i, "the server refused the token: --api-key (or $API_KEY) must be the server's API_KEY, or --token a token it accepts"],
  [/Unexpected server response: 404|Invalid namespace/i, "no Socket.IO server answers at this URL and --path"],
  [/ETIMEDOUT|EHOSTUNREACH|hung/, "the server did not answer in time: is it overloaded, or behind a firewall?"],
  [/PAYLOAD_TOO_LARGE/, "the server refused the messages as too large: lower --payload (the server's MESSAGE_MAX_BYTES)"],
  [/INVALID_CHANNEL|INVALID_ARGUMENT/, "the server refused the requests as invalid: is it a Cerebellum server (or one speaking its channel contract)?"],
];

/** The most frequent error kind matching `filter`, with its count. */
function topKind(errors: Record<string, number>, filter: (kind: string) => boolean = () => true): { kind: string; n: number } | undefined {
  let top: { kind: string; n: number } | undefined;
  for (const [kind, n] of Object.entries(errors)) if (filter(kind) && (!top || n > top.n)) top = { kind, n };
  return top;
}

const withHint = (text: string) => {
  const hint = HINTS.find(([pattern]) => pattern.test(text));
  return hint ? `${text}; ${hint[1]}` : text;
};

const fmt = (n: number) => n.toLocaleString("en-US");

/**
 * Whether a run measured what it was asked to. A run whose stages all missed their objectives
 * measured something (the server's limit); a run that could not connect, whose generator
 * failed, or whose stages measured nothing, did not: the tool exits non-zero with the cause.
 */
export function runOutcome(r: Pick<LoadtestResult, "abandoned" | "failures" | "stages" | "errors" | "connections" | "options" | "interrupted">): RunOutcome {
  const url = String(r.options.url);
  if (r.abandoned !== undefined) {
    const failed = topKind(r.errors, (k) => k.startsWith("connect"));
    const detail = failed ? ` (${fmt(failed.n)} × ${failed.kind})` : "";
    return { ok: false, cause: withHint(`${r.abandoned} to ${url}${detail}`) };
  }
  if (r.failures.length > 0) {
    const more = r.failures.length > 1 ? ` (and ${r.failures.length - 1} more problems)` : "";
    return { ok: false, cause: `the load generator failed: ${r.failures[0]!.split("\n")[0]}${more}` };
  }
  const scenario = String(r.options.scenario) as Parameters<typeof unitsOf>[0];
  const measured = r.stages.reduce((sum, s) => sum + unitsOf(scenario, s.counters), 0);
  if (measured > 0) return { ok: true };
  if (r.stages.length === 0) return { ok: false, cause: r.interrupted ? "interrupted before the first stage" : "no stage ran" };
  // Nothing measured: say what went wrong most often, connects first (they explain everything after).
  const connectFailures = r.connections.errors + r.connections.hung;
  const top = connectFailures > 0 ? topKind(r.errors, (k) => k.startsWith("connect")) : topKind(r.errors);
  if (top) return { ok: false, cause: withHint(`nothing was measured in any stage; most frequent problem: ${top.kind} (${fmt(top.n)}×)`) };
  return { ok: false, cause: r.interrupted ? "interrupted before anything was measured" : "nothing was measured in any stage, and nothing failed: are the stages long enough for the rate?" };
}
