// A small client written against the types generated from the served description
// (`generated/api.d.ts`, from openapi-typescript): it type-checks only while every field it
// uses is in the description, and at run time it checks that the server's answers have them.
// Run by .ci/schemathesis.sh: node dist/client.js <base URL> <access token>.
import type { components, paths } from "./generated/api.js";

declare const process: { argv: string[] };

type Page = paths["/api/conversations"]["get"]["responses"][200]["content"]["application/json"];
type Conversation = components["schemas"]["ConversationView"];
type Lock = components["schemas"]["LockState"];
type Template = components["schemas"]["TemplateView"];
type ApiError = components["schemas"]["ErrorBody"];

const [base, token] = process.argv.slice(2);

async function call<T>(method: string, path: string, body?: unknown): Promise<[number, T]> {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return [response.status, (await response.json()) as T];
}

function expect(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`the server's answer does not match the description: ${what}`);
  }
}

function describe(conversation: Conversation): string {
  const lock = conversation.lock ? ` locked by ${conversation.lock.agent_id}` : "";
  return `${conversation.id} ${conversation.status} v${conversation.version} ` +
    `${conversation.customer.wa_id ?? "?"} unread ${conversation.unread_count}${lock}`;
}

const [status, page] = await call<Page>("GET", "/api/conversations?limit=5");
expect(status === 200 && Array.isArray(page.items), "GET /api/conversations has items");
for (const conversation of page.items) {
  expect(typeof conversation.id === "string" && typeof conversation.version === "number",
    "a conversation has an id and a version");
  console.log(describe(conversation));
}

const [missing, error] = await call<ApiError>("POST", "/api/conversations/probe/lock");
expect(missing === 404 && typeof error.error.code === "string", "a 404 has an error code");

const [listed, templates] = await call<Template[]>("GET", "/api/templates?status=APPROVED");
expect(listed === 200 && Array.isArray(templates), "GET /api/templates is a list");
for (const template of templates) {
  const variables = template.variables.map((v) => `${v.component}:${v.name}`).join(", ");
  console.log(`${template.name} ${template.language} ${template.status}: ${variables}`);
}

// A lock's answer as the description types it (the type checker holds every field to it).
function show(lock: Lock): string {
  return lock.locked ? `held by ${lock.agent_id} until ${lock.expires_at}` : "free";
}
console.log(`typed lock answer: ${show({ locked: false })}`);
console.log("client: the typed client works against the server");
