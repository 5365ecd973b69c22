// Temporary shim for branches written before test/kit/ (issue 18): the coordinator removes it after the merge.
export * from "../kit/broker";
export * from "../kit/cleanup";
export * from "../kit/fixtures";
export { quiet } from "../kit/log";
export { freePort, spawnRole, stopEverything } from "../kit/processes";
export * from "../system/processing/harness";
