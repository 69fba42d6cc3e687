import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, exportSdkEnvironment, loadConfig } from "../src/shared/config.js";
import { startServer, stopAllServers } from "./helpers/server.js";
import { waitFor } from "./helpers/wait.js";

const GENERATED = "generated-key-for-this-run-0123456789";
const API_KEY = "configured-api-key-0123456789abcdef";

/** A key generator that counts its calls. */
function generator() {
  const gen = () => {
    gen.calls++;
    return GENERATED;
  };
  gen.calls = 0;
  return gen;
}

/** Runs loadConfig and returns the ConfigError it throws (fails the test if it does not throw one). */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, generator());
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe("loadConfig", () => {
  it("asks the HTTP API for API_KEY by default, HTTP_API_KEY when set, nothing with HTTP_API_AUTH=off; bounds its bodies", () => {
    const byDefault = loadConfig({ API_KEY }, generator());
    expect(byDefault.httpApi).toEqual({ key: API_KEY, bodyMaxBytes: 131_072 + 65_536 });
    expect(loadConfig({}, generator()).httpApi.key).toBe(GENERATED);
    const own = loadConfig({ API_KEY, HTTP_API_KEY: "backend-key-0123456789abcdef", MESSAGE_MAX_BYTES: "1000" }, generator());
    expect(own.httpApi).toEqual({ key: "backend-key-0123456789abcdef", bodyMaxBytes: 1000 + 65_536 });
    expect(loadConfig({ API_KEY, HTTP_API_AUTH: "off", HTTP_API_BODY_MAX_BYTES: "4096" }, generator()).httpApi).toEqual({ key: undefined, bodyMaxBytes: 4096 });
    expect(configError({ HTTP_API_KEY: "short" }).variable).toBe("HTTP_API_KEY");
    expect(configError({ HTTP_API_AUTH: "maybe" }).variable).toBe("HTTP_API_AUTH");
    expect(configError({ HTTP_API_BODY_MAX_BYTES: "10" }).variable).toBe("HTTP_API_BODY_MAX_BYTES");
  });

  it("gives the documented defaults for an empty environment", () => {
    const config = loadConfig({}, generator());
    expect(config.port).toBe(8001);
    expect(config.healthPort).toBe(3000);
    expect(config.host).toBe("0.0.0.0");
    expect(config.workers).toBe(availableParallelism());
    expect(config.dataDir).toBe(resolve("./data"));
    expect(config.mode).toBe("embedded");
    expect(config.redis).toBeUndefined();
    expect(config.env).toBe("development");
    expect(config.logLevel).toBe("info");
    expect(config.jwt.algorithms).toEqual(["HS256"]);
    expect(config.jwt.requireExp).toBe(true);
    expect(config.jwt.clockToleranceS).toBe(0);
    expect(config.jwt.batchSize).toBe(32);
    expect(config.jwt.batchWaitMs).toBe(1);
    expect(config.poolThreads).toBe(1);
    expect(config.loginRoute).toBe("off");
  });

  it("takes LOGIN_ROUTE=loopback|on outside production only, and nothing else", () => {
    expect(loadConfig({ LOGIN_ROUTE: "loopback" }, generator()).loginRoute).toBe("loopback");
    expect(loadConfig({ NODE_ENV: "test", LOGIN_ROUTE: "on" }, generator()).loginRoute).toBe("on");
    expect(configError({ NODE_ENV: "production", API_KEY, LOGIN_ROUTE: "loopback" }).variable).toBe("LOGIN_ROUTE");
    expect(loadConfig({ NODE_ENV: "production", API_KEY, LOGIN_ROUTE: "off" }, generator()).loginRoute).toBe("off");
    expect(configError({ LOGIN_ROUTE: "yes" }).variable).toBe("LOGIN_ROUTE");
  });

  it("treats an empty variable as unset", () => {
    const config = loadConfig({ PORT: "", WORKERS: "", REDIS_URL: "", API_KEY: "" }, generator());
    expect(config.port).toBe(8001);
    expect(config.workers).toBe(availableParallelism());
    expect(config.mode).toBe("embedded");
    expect(config.apiKeyGenerated).toBe(true);
  });

  it("reads the variables it is given", () => {
    const config = loadConfig(
      { PORT: "9000", HEALTH_PORT: "9001", WORKERS: "3", DATA_DIR: "/var/lib/cerebellum", LOG_LEVEL: "warn", API_KEY },
      generator(),
    );
    expect(config).toMatchObject({ port: 9000, healthPort: 9001, workers: 3, dataDir: "/var/lib/cerebellum", logLevel: "warn" });
  });

  it.each([
    ["PORT", "abc"],
    ["PORT", "70000"],
    ["HEALTH_PORT", "-1"],
    ["WORKERS", "0"],
    ["WORKERS", "1.5"],
    ["LOG_LEVEL", "loud"],
    ["REDIS_URL", "notaurl"],
    ["JWT_REQUIRE_EXP", "maybe"],
    ["JWT_BATCH_SIZE", "0"],
    ["API_KEY", "short"],
    ["NODE_ENV", "staging"],
  ])("rejects %s=%s with a ConfigError naming it", (variable, value) => {
    const err = configError({ API_KEY, [variable]: value });
    expect(err.variable).toBe(variable);
    expect(err.message).toContain(variable);
  });

  it("rejects an unknown algorithm in JWT_ALGORITHMS, naming the variable and the algorithm", () => {
    const err = configError({ API_KEY, JWT_ALGORITHMS: "HS256,HS999" });
    expect(err.variable).toBe("JWT_ALGORITHMS");
    expect(err.message).toContain("JWT_ALGORITHMS");
    expect(err.message).toContain("HS999");
  });

  it("rejects RS256 without a public key", () => {
    expect(configError({ API_KEY, JWT_ALGORITHMS: "RS256" }).variable).toBe("JWT_ALGORITHMS");
  });

  it("refuses to run in production without API_KEY, and generates none", () => {
    const gen = generator();
    let thrown: unknown;
    try {
      loadConfig({ NODE_ENV: "production" }, gen);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).variable).toBe("API_KEY");
    expect((thrown as ConfigError).message).toContain("API_KEY");
    expect(gen.calls).toBe(0);
  });

  it("runs in production with API_KEY set", () => {
    const config = loadConfig({ NODE_ENV: "production", API_KEY }, generator());
    expect(config).toMatchObject({ env: "production", apiKey: API_KEY, apiKeyGenerated: false });
  });

  it("maps REDIS_ENDPOINT_ADDRESS/PORT to a redis:// URL and the clustered mode", () => {
    const config = loadConfig({ API_KEY, REDIS_ENDPOINT_ADDRESS: "cache.internal", REDIS_ENDPOINT_PORT: "6380" }, generator());
    expect(config.mode).toBe("clustered");
    expect(config.redis?.url).toBe("redis://cache.internal:6380");
    const defaultPort = loadConfig({ API_KEY, REDIS_ENDPOINT_ADDRESS: "cache.internal" }, generator());
    expect(defaultPort.redis?.url).toBe("redis://cache.internal:6379");
    expect(defaultPort.mode).toBe("clustered");
  });

  it("prefers REDIS_URL over REDIS_ENDPOINT_ADDRESS", () => {
    const config = loadConfig(
      { API_KEY, REDIS_URL: "redis://primary:7000", REDIS_ENDPOINT_ADDRESS: "other" },
      generator(),
    );
    expect(config.redis?.url).toBe("redis://primary:7000");
  });

  it("rejects REDIS_ENDPOINT_PORT without an address", () => {
    expect(configError({ API_KEY, REDIS_ENDPOINT_PORT: "6380" }).variable).toBe("REDIS_ENDPOINT_ADDRESS");
  });

  it("uses a generated key when API_KEY is unset outside production", () => {
    const gen = generator();
    const config = loadConfig({ NODE_ENV: "development" }, gen);
    expect(config.apiKey).toBe(GENERATED);
    expect(config.apiKeyGenerated).toBe(true);
    expect(gen.calls).toBe(1);
  });

  it("uses API_KEY when set and generates nothing", () => {
    const gen = generator();
    const config = loadConfig({ API_KEY }, gen);
    expect(config.apiKey).toBe(API_KEY);
    expect(config.apiKeyGenerated).toBe(false);
    expect(gen.calls).toBe(0);
  });

  it("turns literal \\n in JWT_PUBLIC_KEY into newlines and then defaults to RS256,ES256", () => {
    const config = loadConfig({ API_KEY, JWT_PUBLIC_KEY: "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----" }, generator());
    expect(config.jwt.publicKey).toBe("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----");
    expect(config.jwt.algorithms).toEqual(["RS256", "ES256"]);
  });

  it("hides the AWS SDK's Node-version notice unless told otherwise, and hands the switch on", () => {
    const env: NodeJS.ProcessEnv = {};
    exportSdkEnvironment(loadConfig({}, generator()).persistence, env);
    expect(env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe("true");
    exportSdkEnvironment(loadConfig({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "false" }, generator()).persistence, env);
    expect(env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).toBe("false");
    expect(() => loadConfig({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "maybe" }, generator())).toThrow(
      /AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED/,
    );
  });

  it("returns a deeply frozen object", () => {
    const config = loadConfig({ API_KEY }, generator());
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.jwt)).toBe(true);
    expect(Object.isFrozen(config.jwt.algorithms)).toBe(true);
    expect(Object.isFrozen(config.engine)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.jwt.algorithms as string[]).push("none");
    }).toThrow(TypeError);
    expect(config.port).toBe(8001);
  });
});

describe("the real server with a bad variable", () => {
  afterAll(async () => {
    await stopAllServers();
  });

  it("exits with code 1 and names the variable (PORT=notaport)", async () => {
    const server = await startServer({ env: { PORT: "notaport" }, waitReady: false });
    const code = await waitFor(() => (server.process.exitCode !== null ? { code: server.process.exitCode } : false), {
      what: "the server to exit",
    });
    expect(code).toEqual({ code: 1 });
    const named = await waitFor(() => server.output.find((line) => line.includes("PORT")), {
      what: "an output line naming PORT",
    });
    expect(named).toMatch(/\bPORT\b/);
    expect(named).not.toMatch(/HEALTH_PORT/);
    expect(server.liveWorkerPids()).toEqual([]);
  });

  it("LOG_FORMAT=auto is pretty only at a terminal outside production; json and pretty are taken as set", () => {
    const load = (env: Record<string, string>, terminal: boolean) => loadConfig({ API_KEY, ...env }, generator(), terminal).logFormat;
    expect(load({}, true)).toBe("pretty");
    expect(load({}, false)).toBe("json");
    expect(load({ NODE_ENV: "production" }, true)).toBe("json");
    expect(load({ LOG_FORMAT: "json" }, true)).toBe("json");
    expect(load({ LOG_FORMAT: "pretty", NODE_ENV: "production" }, false)).toBe("pretty");
    expect(configError({ API_KEY, LOG_FORMAT: "yaml" }).variable).toBe("LOG_FORMAT");
  });
});
