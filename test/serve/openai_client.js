// stc-serve from the official OpenAI client for Node (the `openai` package,
// installed into the project's npm folder by tools/setup/install-deps.sh): a
// tool-calling round trip. The model has random weights, so the calls are
// forced (tool_choice required, then a named function); the grammar makes
// them valid calls of the tools' schemas.
//   node openai_client.js BASE_URL   (e.g. http://127.0.0.1:8080/v1)
const OpenAI = require("openai");

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused" });
let failed = 0;
function check(ok, what) {
  console.log((ok ? "ok:   " : "FAIL: ") + what);
  if (!ok) failed++;
}

const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather in a city.",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", maxLength: 12 },
          unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        },
        required: ["city"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "add",
      parameters: {
        type: "object",
        properties: { a: { type: "integer" }, b: { type: "integer" } },
        required: ["a", "b"],
        additionalProperties: false,
      },
    },
  },
];
const noEos = { 509: -100, 511: -100 }; // (the tiny preset's eos ids)

async function main() {
  const messages = [{ role: "user", content: "What is the weather in Paris?" }];
  const first = await client.chat.completions.create({
    model: "tiny",
    messages,
    tools,
    tool_choice: "required",
    parallel_tool_calls: false,
    max_tokens: 200,
    seed: 3,
  });
  const choice = first.choices[0];
  const calls = choice.message.tool_calls || [];
  check(
    choice.finish_reason === "tool_calls" && calls.length === 1,
    `tool_choice required: one call, finish_reason ${choice.finish_reason}`
  );
  const call = calls[0];
  let args = null;
  try {
    args = JSON.parse(call.function.arguments);
  } catch (e) {}
  const named = tools.find((t) => t.function.name === call.function.name);
  check(
    typeof call.id === "string" && call.type === "function" && named && args !== null &&
      typeof args === "object",
    `the call names a tool and its arguments are a JSON object: ${call.function.name} ${call.function.arguments}`
  );
  const required = named ? named.function.parameters.required : [];
  check(
    required.every((k) => k in args),
    `the arguments hold the tool's required fields (${required.join(", ")})`
  );

  // The result goes back as a tool message; the model answers in text. With
  // tool_choice none the template is not given the tools, so the prompt is
  // compared with the bare question's under the same choice.
  const bare = await client.chat.completions.create({
    model: "tiny",
    messages,
    tools,
    tool_choice: "none",
    max_tokens: 1,
  });
  messages.push(choice.message);
  messages.push({ role: "tool", tool_call_id: call.id, content: '{"temperature": 21}' });
  const second = await client.chat.completions.create({
    model: "tiny",
    messages,
    tools,
    tool_choice: "none",
    max_tokens: 8,
    logit_bias: noEos,
  });
  check(
    typeof second.choices[0].message.content === "string" &&
      second.choices[0].message.content.length > 0 &&
      !second.choices[0].message.tool_calls &&
      second.usage.prompt_tokens > bare.usage.prompt_tokens,
    "the tool's result goes back and the model answers in text " +
      `(${bare.usage.prompt_tokens} then ${second.usage.prompt_tokens} prompt tokens)`
  );

  // A named function, streamed: the SDK's chunks join into the call.
  const stream = await client.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: "Add two numbers." }],
    tools,
    tool_choice: { type: "function", function: { name: "add" } },
    max_tokens: 200,
    seed: 5,
    stream: true,
  });
  let name = "", argText = "", id = "", finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    for (const t of (c.delta && c.delta.tool_calls) || []) {
      if (t.id) id = t.id;
      if (t.function && t.function.name) name += t.function.name;
      if (t.function && t.function.arguments) argText += t.function.arguments;
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  let sum = null;
  try {
    sum = JSON.parse(argText);
  } catch (e) {}
  check(
    id !== "" && name === "add" && sum && Number.isInteger(sum.a) && Number.isInteger(sum.b) &&
      finish === "tool_calls",
    `a named function, streamed: ${name}(${argText}), finish_reason ${finish}`
  );
  if (failed) {
    console.log(`${failed} failed`);
    process.exit(1);
  }
  console.log("all passed");
}

main().catch((e) => {
  console.log("FAIL: " + e);
  process.exit(1);
});
