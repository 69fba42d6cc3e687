import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "test/**/*.test.mts"],
    // Integration tests start real servers and Redis; on a 2-core machine, running files in
    // parallel makes them fight for CPU, so files run one at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // The tests' own AWS SDK clients (dynalite, fauxqs) would print the SDK's Node 22 notice on
    // Node 20, as the server's would without its default (AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    // The published SDK's ESM has an extension-less import that Node's resolver refuses;
    // apps load it through a bundler, so the tests let Vite resolve it the same way.
    server: { deps: { inline: [/@cerebellum\/sdk/] } },
  },
});
