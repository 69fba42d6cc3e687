export { isAlive, latch, sleep, waitFor } from "../../harness/wait.js";
