// What the consumer accepts from the queue: the messages this service writes, and nothing else.
import { describe, expect, test } from "bun:test";
import { parseMessage } from "../../../src/queue/rabbitmq/consumer";

describe("parseMessage", () => {
  const id = "0193b6c2-5f1e-7c3a-9a51-2f0c8e6d4b10";
  const parse = (body: string) => parseMessage(Buffer.from(body));

  test("reads the messages this service writes", () => {
    expect(parse(JSON.stringify({ id }))).toEqual({ id });
    expect(parse(JSON.stringify({ id, resume: true }))).toEqual({ id, resume: true });
    expect(parse(JSON.stringify({ id, resume: false }))).toEqual({ id });
  });

  test("keeps only the fields it knows", () => {
    expect(parse(JSON.stringify({ id, amount: "1.00" }))).toEqual({ id });
  });

  test.each([
    ["invalid JSON", "{"],
    ["an empty body", ""],
    ["JSON that is not an object", JSON.stringify(id)],
    ["null", "null"],
    ["an array", JSON.stringify([id])],
    ["no id", JSON.stringify({ resume: true })],
    ["an id that is not a string", JSON.stringify({ id: 42 })],
    ["an id that is not a UUID", JSON.stringify({ id: "42" })],
    ["a UUID with trailing text", JSON.stringify({ id: `${id}x` })],
    ["a resume flag that is not a boolean", JSON.stringify({ id, resume: "true" })],
  ])("refuses %s", (_, body) => {
    expect(parse(body)).toBeUndefined();
  });
});
