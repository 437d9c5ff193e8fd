// Call one tool of a stdio MCP server with the TypeScript MCP SDK client the MCP Inspector is built on, with the
// request options of the Inspector's web client: the SDK's default timeout (60 s, not overridden),
// resetTimeoutOnProgress true, an onprogress callback (so the request carries a progressToken).
// TIMEOUT_MS (optional) overrides the timeout, for the control test that only needs "some timeout, no progress".
//
//   SERVER_ENV_JSON='{"PYTHONPATH": "..."}' node ts_sdk_call.mjs SDK_DIR TOOL ARGS_JSON COMMAND [ARGS...]
//
// Prints one JSON line: {ok, seconds, progress: [{t, progress, message}], result | error}.
import { pathToFileURL } from "node:url";

const [sdkDir, tool, argsJson, command, ...args] = process.argv.slice(2);
const { Client, DEFAULT_REQUEST_TIMEOUT_MSEC } = await import(pathToFileURL(`${sdkDir}/dist/index.mjs`).href);
const { StdioClientTransport } = await import(pathToFileURL(`${sdkDir}/dist/stdio.mjs`).href);

const transport = new StdioClientTransport({
  command, args, env: JSON.parse(process.env.SERVER_ENV_JSON || "{}"), stderr: "inherit",
});
const client = new Client({ name: "sleuth-ts-sdk-test", version: "0" });
await client.connect(transport);
const progress = [];
const timeoutMs = process.env.TIMEOUT_MS ? Number(process.env.TIMEOUT_MS) : 0;
const t0 = Date.now();
const seconds = () => (Date.now() - t0) / 1000;
let out;
try {
  const result = await client.callTool(
    { name: tool, arguments: JSON.parse(argsJson) },
    { onprogress: (p) => progress.push({ t: seconds(), ...p }), resetTimeoutOnProgress: true,
      ...(timeoutMs ? { timeout: timeoutMs } : {}) },
  );
  out = { ok: true, seconds: seconds(), timeout_ms: timeoutMs || DEFAULT_REQUEST_TIMEOUT_MSEC, progress, result };
} catch (e) {
  out = { ok: false, seconds: seconds(), timeout_ms: timeoutMs || DEFAULT_REQUEST_TIMEOUT_MSEC, progress, error: String(e) };
}
console.log(JSON.stringify(out));
await client.close();
process.exit(0);
