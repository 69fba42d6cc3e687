export { rssBytes } from "../../harness/procfs.js";
