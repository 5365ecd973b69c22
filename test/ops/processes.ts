// Temporary shim for branches written before test/kit/ (issue 18): the coordinator removes it after the merge.

export { sample } from "../kit/api";
export * from "../kit/processes";
