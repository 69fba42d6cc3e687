/**
 * Event-loop cost of verifying connection tokens: inline on the main thread vs through the piscina
 * pool (one task per token, and micro-batches), for HS256 (KeyObject secret, and a string secret for
 * comparison), RS256 and ES256. The figures behind the policy in src/worker/jwt-verifier.ts.
 *
 * What is measured is the CPU time of the main thread (the event loop) only, read from
 * /proc/self/task/<pid>/schedstat (ns resolution; pool threads and libuv/V8 helper threads are other
 * tasks and not counted). Where that file is missing, the event loop's active time
 * (performance.eventLoopUtilization) stands in. Whole-process CPU (every thread) is shown beside it,
 * because moving work to the pool saves event-loop time but not machine time.
 *
 * Every variant goes through the real code: verifyToken/buildKeys from src/worker/jwt-verify.ts
 * inline, the compiled task file dist/src/worker/tasks/verify-tokens.js in the pool, and the
 * JwtVerifier class itself as the server runs it. Each measurement is repeated (default 5 rounds,
 * after one warm-up round) and the median is reported, with ratios against the inline baseline of
 * the same algorithm measured in the same run. "burst" submits every token at once (batches fill up);
 * "one at a time" awaits each verification before the next (a quiet server: every batch holds one
 * token and waits JWT_BATCH_WAIT_MS).
 *
 * Usage: npm run bench:jwt [-- --rounds 5 --threads 1 --batch 32 --scale 1]
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import jwt from "jsonwebtoken";
import Piscina from "piscina";
import { loadConfig, type JwtAlgorithm } from "../src/shared/config.js";
import { buildKeys, verifyToken, type VerifierKeys, type VerifyResult } from "../src/worker/jwt-verify.js";
import { JwtVerifier } from "../src/worker/jwt-verifier.js";
import { positiveInt } from "../harness/args.js";
import { mainThreadCpuNs } from "../harness/procfs.js";
import { median } from "../harness/stats.js";

const TASK_FILE = resolve(__dirname, "../src/worker/tasks/verify-tokens.js");
/** The bench must end by itself; past this it reports what it has not finished and exits 1. */
const DEADLINE_MS = 60_000;

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    threads: { type: "string", default: "1" }, // POOL_THREADS' default: one pool thread per worker process
    batch: { type: "string", default: "32" }, // JWT_BATCH_SIZE's default
    scale: { type: "string", default: "1" }, // multiplies the token counts
  },
});
const ROUNDS = positiveInt("rounds", args.rounds);
const THREADS = positiveInt("threads", args.threads);
const BATCH = positiveInt("batch", args.batch);
const SCALE = Number(args.scale);
if (!(SCALE > 0)) throw new Error(`--scale must be a positive number (got ${args.scale})`);

// ---------------------------------------------------------------------------------------------
// Clocks

// Not Linux, or schedstat not exposed: event-loop active time stands in.
const haveSchedstat = (mainThreadCpuNs() ?? 0) > 0;

interface Sample {
  /** Main-thread CPU (or ELU active time when schedstat is missing), µs per verification. */
  loopUs: number;
  /** ELU active time, µs per verification. */
  eluUs: number;
  /** Whole-process CPU (all threads), µs per verification. */
  totalUs: number;
  /** Verifications per second, wall clock. */
  rate: number;
}

async function measure(count: number, run: () => void | Promise<void>): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const wall0 = performance.now();
  const main0 = haveSchedstat ? mainThreadCpuNs()! : 0;
  await run();
  const main1 = haveSchedstat ? mainThreadCpuNs()! : 0;
  const wall = performance.now() - wall0;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  const eluUs = (elu.active * 1000) / count;
  return {
    loopUs: haveSchedstat ? (main1 - main0) / 1000 / count : eluUs,
    eluUs,
    totalUs: (cpu.user + cpu.system) / count,
    rate: count / (wall / 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// Variants

interface Variant {
  name: string;
  tokens: string[];
  /** Verifies every token once; throws if any result is not ok (a bench of the error path is worthless). */
  run(): void | Promise<void>;
}

function expectOk(results: readonly VerifyResult[], what: string): void {
  const bad = results.find((r) => !r.ok);
  if (bad && !bad.ok) throw new Error(`${what}: a token was refused (${bad.code}); the bench would measure the error path`);
}

function inline(name: string, tokens: string[], keys: VerifierKeys): Variant {
  return {
    name,
    tokens,
    run() {
      const results: VerifyResult[] = new Array(tokens.length);
      for (let i = 0; i < tokens.length; i++) results[i] = verifyToken(tokens[i], keys);
      expectOk(results, name);
    },
  };
}

function pooled(name: string, tokens: string[], pool: Piscina, batch: number): Variant {
  return {
    name,
    tokens,
    async run() {
      const tasks: Promise<VerifyResult[]>[] = [];
      for (let i = 0; i < tokens.length; i += batch) tasks.push(pool.run(tokens.slice(i, i + batch)));
      expectOk((await Promise.all(tasks)).flat(), name);
    },
  };
}

function viaVerifier(name: string, tokens: string[], verifier: JwtVerifier): Variant {
  return {
    name,
    tokens,
    async run() {
      expectOk(await Promise.all(tokens.map((t) => verifier.verify(t))), name);
    },
  };
}

/** Tokens that arrive one at a time (a quiet server): each waits out JWT_BATCH_WAIT_MS alone in its batch. */
function viaVerifierOneByOne(name: string, tokens: string[], verifier: JwtVerifier): Variant {
  return {
    name,
    tokens,
    async run() {
      const results: VerifyResult[] = [];
      for (const t of tokens) results.push(await verifier.verify(t));
      expectOk(results, name);
    },
  };
}

function createPool(keys: { apiKey: string; publicKeyPem: string | undefined; algorithms: JwtAlgorithm[] }): Piscina {
  // The same options JwtVerifier gives its pool.
  return new Piscina({
    filename: TASK_FILE,
    minThreads: THREADS,
    maxThreads: THREADS,
    workerData: { ...keys, requireExp: true, clockToleranceS: 0 },
  });
}

function createVerifier(env: Record<string, string>): JwtVerifier {
  const config = loadConfig(
    { ...env, POOL_THREADS: String(THREADS), JWT_BATCH_SIZE: String(BATCH), JWT_BATCH_WAIT_MS: "1" },
    () => {
      throw new Error("API_KEY is set");
    },
  );
  return new JwtVerifier(config);
}

function sign(count: number, key: string | KeyObject, algorithm: jwt.Algorithm): string[] {
  return Array.from({ length: count }, (_, i) =>
    jwt.sign({ sub: `user-${i}`, n: i }, key, { algorithm, expiresIn: 600 }),
  );
}

// ---------------------------------------------------------------------------------------------
// Groups: one per algorithm, the first variant is the inline baseline

interface Group {
  alg: string;
  variants: Variant[];
  close(): Promise<void>;
}

function pemOf(key: KeyObject): string {
  return key.export({ type: "spki", format: "pem" }).toString();
}

function buildGroups(): Group[] {
  const n = (base: number) => Math.max(BATCH, Math.round(base * SCALE));
  const apiKey = randomBytes(24).toString("base64url");
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const rsaPem = pemOf(rsa.publicKey);
  const ecPem = pemOf(ec.publicKey);

  const hsKeys = buildKeys({ apiKey, publicKeyPem: undefined, algorithms: ["HS256"], requireExp: true, clockToleranceS: 0 });
  // The same verifyToken with the secret left as a string, to show what the KeyObject saves.
  const hsStringKeys = { ...hsKeys, secret: apiKey as unknown as KeyObject };
  const rsKeys = buildKeys({ apiKey, publicKeyPem: rsaPem, algorithms: ["RS256"], requireExp: true, clockToleranceS: 0 });
  const esKeys = buildKeys({ apiKey, publicKeyPem: ecPem, algorithms: ["ES256"], requireExp: true, clockToleranceS: 0 });

  const hsTokens = sign(n(2000), apiKey, "HS256");
  const hsStringTokens = hsTokens.slice(0, n(200));
  const rsTokens = sign(n(1000), rsa.privateKey, "RS256");
  const esTokens = sign(n(1000), ec.privateKey, "ES256");

  const hsPool = createPool({ apiKey, publicKeyPem: undefined, algorithms: ["HS256"] });
  const rsPool = createPool({ apiKey, publicKeyPem: rsaPem, algorithms: ["RS256"] });
  const esPool = createPool({ apiKey, publicKeyPem: ecPem, algorithms: ["ES256"] });
  const rsVerifier = createVerifier({ API_KEY: apiKey, JWT_PUBLIC_KEY: rsaPem, JWT_ALGORITHMS: "RS256" });
  const esVerifier = createVerifier({ API_KEY: apiKey, JWT_PUBLIC_KEY: ecPem, JWT_ALGORITHMS: "ES256" });
  const hsVerifier = createVerifier({ API_KEY: apiKey, JWT_ALGORITHMS: "HS256" });

  const asymmetric = (alg: string, tokens: string[], keys: VerifierKeys, pool: Piscina, verifier: JwtVerifier): Group => ({
    alg,
    variants: [
      inline("inline", tokens, keys),
      pooled("pool, 1 token/task", tokens, pool, 1),
      pooled(`pool, ${BATCH} tokens/task`, tokens, pool, BATCH),
      viaVerifier("JwtVerifier, burst", tokens, verifier),
      viaVerifierOneByOne("JwtVerifier, one at a time", tokens.slice(0, n(200)), verifier),
    ],
    close: async () => {
      await pool.destroy();
      await verifier.close();
    },
  });

  return [
    {
      alg: "HS256",
      variants: [
        inline("inline, KeyObject secret", hsTokens, hsKeys),
        inline("inline, string secret", hsStringTokens, hsStringKeys),
        pooled("pool, 1 token/task", hsTokens, hsPool, 1),
        pooled(`pool, ${BATCH} tokens/task`, hsTokens, hsPool, BATCH),
        viaVerifier("JwtVerifier, burst", hsTokens, hsVerifier),
      ],
      close: async () => {
        await hsPool.destroy();
        await hsVerifier.close();
      },
    },
    asymmetric("RS256", rsTokens, rsKeys, rsPool, rsVerifier),
    asymmetric("ES256", esTokens, esKeys, esPool, esVerifier),
  ];
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (x: number, digits = 1) => x.toFixed(digits);

interface Row {
  alg: string;
  variant: string;
  tokens: number;
  loop: number;
  loopMin: number;
  loopMax: number;
  ratio: number;
  elu: number;
  total: number;
  rate: number;
}

function printTable(rows: Row[]): void {
  const header = ["alg", "variant", "tokens", "loop µs/verify", "× inline", "min–max", "ELU µs", "all-thread CPU µs", "verify/s"];
  const cells = rows.map((r) => [
    r.alg,
    r.variant,
    String(r.tokens),
    fmt(r.loop, 2),
    fmt(r.ratio, 2),
    `${fmt(r.loopMin)}–${fmt(r.loopMax)}`,
    fmt(r.elu, 2),
    fmt(r.total, 1),
    String(Math.round(r.rate)),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i < 2 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  let last = "";
  for (const [i, c] of cells.entries()) {
    if (last && rows[i]!.alg !== last) console.log("");
    last = rows[i]!.alg;
    console.log(line(c));
  }
}

/** States, from this run's figures, whether each algorithm's cheapest event-loop path is the one the server takes. */
function printVerdict(rows: Row[]): void {
  console.log("\nPolicy check (src/worker/jwt-verifier.ts: HS256 inline, RS256/ES256 pooled in micro-batches):");
  for (const alg of ["HS256", "RS256", "ES256"]) {
    const of = rows.filter((r) => r.alg === alg);
    const base = of[0]!;
    const single = of.find((r) => r.variant.startsWith("pool, 1 "))!;
    const batched = of.find((r) => r.variant.startsWith(`pool, ${BATCH} `))!;
    const burst = of.find((r) => r.variant === "JwtVerifier, burst")!;
    const quiet = of.find((r) => r.variant === "JwtVerifier, one at a time");
    console.log(
      `  ${alg}: inline ${fmt(base.loop, 2)} µs; pool 1/task ${fmt(single.ratio, 2)}×; pool ${BATCH}/task ${fmt(batched.ratio, 2)}×; ` +
        `server path burst ${fmt(burst.ratio, 2)}×` +
        (quiet ? `, one at a time ${fmt(quiet.ratio, 2)}×` : "") +
        " (event-loop time per verification against inline)",
    );
  }
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    console.error(`jwt-bench: still running after ${DEADLINE_MS / 1000} s; aborting (try --rounds 3 or --scale 0.5)`);
    process.exit(1);
  }, DEADLINE_MS);
  deadline.unref();

  const started = performance.now();
  const groups = buildGroups();
  console.log(
    `jwt-bench: node ${process.version}, ${ROUNDS} rounds (+1 warm-up), pool threads ${THREADS}, batch ${BATCH}; ` +
      `event-loop time = ${haveSchedstat ? "main-thread CPU (schedstat)" : "ELU active time (schedstat unavailable)"}`,
  );

  const rows: Row[] = [];
  for (const group of groups) {
    const samples = group.variants.map(() => [] as Sample[]);
    // Rounds interleave the variants so that drift (thermal, other load) spreads over all of them.
    for (let round = 0; round <= ROUNDS; round++) {
      for (const [i, variant] of group.variants.entries()) {
        const sample = await measure(variant.tokens.length, () => variant.run());
        if (round > 0) samples[i]!.push(sample); // round 0 warms JIT, key caches and pool threads
      }
    }
    const baseline = median(samples[0]!.map((s) => s.loopUs));
    for (const [i, variant] of group.variants.entries()) {
      const loops = samples[i]!.map((s) => s.loopUs);
      const loop = median(loops);
      rows.push({
        alg: group.alg,
        variant: variant.name,
        tokens: variant.tokens.length,
        loop,
        loopMin: Math.min(...loops),
        loopMax: Math.max(...loops),
        ratio: loop / baseline,
        elu: median(samples[i]!.map((s) => s.eluUs)),
        total: median(samples[i]!.map((s) => s.totalUs)),
        rate: median(samples[i]!.map((s) => s.rate)),
      });
    }
    await group.close();
  }

  console.log("");
  printTable(rows);
  printVerdict(rows);
  console.log(
    "\nloop µs = event-loop time per verification (median of rounds); × inline = against the first row of the same algorithm;" +
      "\nall-thread CPU includes the pool threads. Finished in " +
      `${fmt((performance.now() - started) / 1000)} s.`,
  );
}

main().catch((err: unknown) => {
  console.error("jwt-bench failed:", err);
  process.exit(1);
});
