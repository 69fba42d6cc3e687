/** The bench's helper: a TCP port that was free a moment ago (the OS picks it). */
export { freePort } from "../../scripts/bench/targets.js";
