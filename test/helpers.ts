// Temporary shim for branches written before test/kit/ (issue 18): the coordinator removes it after the merge.
export * from "./kit/api";
export * from "./kit/db";
export { quiet as log } from "./kit/log";
export { createAndAwaitCompleted } from "./kit/processes";
export * from "./kit/wait";
