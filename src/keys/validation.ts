import { TypeCompiler } from "@sinclair/typebox/compiler";
import { unfilteredList, validateList } from "../lib/lists";
import { type Validated, validateBody } from "../lib/validate";
import { ApiKey, CreateApiKeyBody, type CreateApiKeyInput, RollApiKeyBody, type RollApiKeyInput } from "./model";

const createCheck = TypeCompiler.Compile(CreateApiKeyBody);
const rollCheck = TypeCompiler.Compile(RollApiKeyBody);

/** Fields a key shows but a body may not set. */
const READ_ONLY = new Set(
  [...Object.keys(ApiKey.properties), "secret"].filter((field) => !(field in CreateApiKeyBody.properties)),
);

export const validateCreateKey = (body: unknown): Validated<CreateApiKeyInput> =>
  validateBody(createCheck, READ_ONLY, body);

/** A roll's body is optional: none is the default overlap. */
export const validateRollKey = (body: unknown): Validated<RollApiKeyInput> =>
  validateBody(rollCheck, READ_ONLY, body ?? {});

export const validateKeyListQuery = (search: URLSearchParams) => validateList(search, unfilteredList);
