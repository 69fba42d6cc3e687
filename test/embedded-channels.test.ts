import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeAllClients, connect, nextEvent, request } from "./helpers/client.js";
import { startServer, stopAllServers, type RunningServer } from "./helpers/server.js";

describe("smoke", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    closeAllClients();
    await stopAllServers();
  });

  it("publishes to a subscriber", async () => {
    const a = await connect(server.url, server.token());
    const b = await connect(server.url, server.token());
    expect(await request(a, "channel:subscribe", "room:1")).toEqual({ success: true });
    const got = nextEvent(a, "message:receive:room:1");
    b.emit("message:queue", "room:1", { hello: "world" });
    const message = await got;
    expect(message).toMatchObject({ content: { hello: "world" }, socketId: b.id });
  });
});
