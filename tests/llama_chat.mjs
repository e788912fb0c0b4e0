// Answer questions with llama.cpp through node-llama-cpp, using the GGUF's own chat template.
// stdin: {"model": "/path.gguf", "questions": ["..." or {"text": "...", "max_tokens": 48}], "max_tokens": 64, "threads": 2}
// stdout: one line per answer as it is made, {"index": 0, "text": "...", "stop_reason": "eogToken", "seconds": 0.4},
// then {"load_s": 0.5, "done": true}: a crash part-way keeps the answers made before it (llama_runtime.ask
// restarts from the next question).
// The chat template is the GGUF's own Jinja template rendered as-is (not a built-in wrapper that
// node-llama-cpp would pick as equivalent, which drops e.g. SmolLM2's default system message).
// Each question starts from an empty chat history (no system message is added: the template's
// own default applies, as in graphtune's generation), greedy (temperature 0).
import {getLlama, JinjaTemplateChatWrapper, LlamaChatSession} from "node-llama-cpp";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const started = Date.now();
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath: req.model});
const context = await model.createContext({contextSize: req.context_size ?? 1024, threads: req.threads ?? 2});
const template = model.fileInfo.metadata?.tokenizer?.chat_template;
if (!template) throw new Error("the GGUF has no tokenizer.chat_template");
const chatWrapper = new JinjaTemplateChatWrapper({template});
const session = new LlamaChatSession({contextSequence: context.getSequence(), chatWrapper});
const load_s = (Date.now() - started) / 1000;
for (const [index, item] of req.questions.entries()) {
  const question = typeof item === "string" ? item : item.text;
  const maxTokens = (typeof item === "string" ? null : item.max_tokens) ?? req.max_tokens ?? 64;
  session.setChatHistory([]);
  const t0 = Date.now();
  const out = await session.promptWithMeta(question, {temperature: 0, maxTokens});
  process.stdout.write(JSON.stringify({index, text: out.responseText.trim(), stop_reason: out.stopReason,
                                       seconds: (Date.now() - t0) / 1000}) + "\n");
}
process.stdout.write(JSON.stringify({load_s, done: true}) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
