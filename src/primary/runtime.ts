/**
 * The Node.js versions this server is tested on: 24 LTS (the supported runtime, the image's) and
 * 20.19+ (past its end of life on 2026-04-30; CI still runs it while machines carry it).
 * `engines` in package.json says the same.
 */

/** What start-up says about a Node version: `refuse` stops it with the message. */
export type RuntimeVerdict = { verdict: "supported" } | { verdict: "warn" | "refuse"; message: string };

const GET_24 = "Node 24 LTS (https://nodejs.org, or `npx -y node@24 dist/src/primary/main.js` after `npm run build`)";

/** Judges `version` (as `process.versions.node` spells it). */
export function judgeRuntime(version: string): RuntimeVerdict {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  if (major === 24) return { verdict: "supported" };
  if (major < 20 || (major === 20 && minor < 19)) {
    return { verdict: "refuse", message: `Node ${version} cannot run Cerebellum server: use ${GET_24}.` };
  }
  if (major < 24) {
    return { verdict: "warn", message: `Node ${version} runs Cerebellum server, but its supported runtime is ${GET_24}.` };
  }
  return { verdict: "warn", message: `Node ${version} is newer than Cerebellum server is tested on (Node 24 LTS).` };
}
