import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type ListSpec, limitOf, type PageQuery, unfilteredList, validateList } from "../lib/lists";
import { type Validated, validateBody } from "../lib/validate";
import {
  CreateWebhookEndpointBody,
  type CreateWebhookEndpointInput,
  DeliveryListQueryParams,
  type DeliveryStatus,
  UpdateWebhookEndpointBody,
  type UpdateWebhookEndpointInput,
  WebhookEndpoint,
} from "./model";

const createCheck = TypeCompiler.Compile(CreateWebhookEndpointBody);
const updateCheck = TypeCompiler.Compile(UpdateWebhookEndpointBody);

/** Fields an endpoint shows but a body may not set. */
const READ_ONLY = new Set(
  [...Object.keys(WebhookEndpoint.properties), "secret"].filter((f) => !(f in CreateWebhookEndpointBody.properties)),
);

export const validateCreateEndpoint = (body: unknown): Validated<CreateWebhookEndpointInput> =>
  validateBody(createCheck, READ_ONLY, body);
export const validateUpdateEndpoint = (body: unknown): Validated<UpdateWebhookEndpointInput> =>
  validateBody(updateCheck, READ_ONLY, body);

export type DeliveryListQuery = PageQuery & { status?: DeliveryStatus };

export const deliveryList: ListSpec<DeliveryListQuery> = {
  check: TypeCompiler.Compile(DeliveryListQueryParams),
  toQuery: (params) => ({ limit: limitOf(params), status: params.status as DeliveryStatus | undefined }),
  filters: (query) => ({ status: query.status }),
};

export const validateEndpointListQuery = (search: URLSearchParams) => validateList(search, unfilteredList);
export const validateDeliveryListQuery = (search: URLSearchParams) => validateList(search, deliveryList);
