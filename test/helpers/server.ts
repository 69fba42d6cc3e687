export { MAIN, TEST_API_KEY, startServer, stopAllServers, type RunningServer, type ServerOptions } from "../../harness/server.js";
