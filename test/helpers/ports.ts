export { freePort } from "../../harness/net.js";
