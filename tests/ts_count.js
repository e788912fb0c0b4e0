// Independent count of a TypeScript/JavaScript tree with the TypeScript compiler API
// (node + the `typescript` npm package), for tests/test_language_ingest.py.
// Rules as documented in tools/graph/lang_typescript.py: top-level class/interface/enum
// declarations; top-level function declarations with a body and `const f = () => ...`;
// class methods with a body, abstract methods, constructors, accessors and fields holding an
// (arrow) function; interface method signatures; one per name. Usage: node ts_count.js TYPESCRIPT_MODULE ROOT FILE...
const ts = require(process.argv[2]);
const fs = require("fs");
const path = require("path");
const root = process.argv[3];
const classes = new Set(), functions = new Set(), methods = new Set();
let params = 0;
const methodParams = new Map(), functionParams = new Map();

function nameOf(node) {
  return node.name && node.name.getText ? node.name.getText() : "";
}
function countParams(fn) {
  return fn.parameters.filter((p) => p.name.getText() !== "this").length;
}
for (const rel of process.argv.slice(4)) {
  const text = fs.readFileSync(path.join(root, rel), "utf8");
  const kind = rel.endsWith(".tsx") ? ts.ScriptKind.TSX : rel.match(/\.(c|m)?jsx?$/) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true, kind);
  for (const stmt of sf.statements) {
    if (ts.isClassDeclaration(stmt) || ts.isInterfaceDeclaration(stmt) || ts.isEnumDeclaration(stmt)) {
      if (!stmt.name || (stmt.modifiers || []).some((m) => m.kind === ts.SyntaxKind.DeclareKeyword)) continue;
      const cls = `${rel}:${nameOf(stmt)}`;
      classes.add(cls);
      if (ts.isEnumDeclaration(stmt)) continue;
      for (const member of stmt.members) {
        const isMethod = ts.isInterfaceDeclaration(stmt)
          ? ts.isMethodSignature(member)
          : (ts.isMethodDeclaration(member) && (member.body || (member.modifiers || []).some((m) => m.kind === ts.SyntaxKind.AbstractKeyword)))
            || (ts.isConstructorDeclaration(member) && member.body) || ts.isGetAccessor(member) || ts.isSetAccessor(member);
        const fieldFn = ts.isPropertyDeclaration(member) && member.initializer &&
          (ts.isArrowFunction(member.initializer) || ts.isFunctionExpression(member.initializer)) ? member.initializer : null;
        if (!isMethod && !fieldFn) continue;
        const name = ts.isConstructorDeclaration(member) ? "constructor" : nameOf(member);
        methods.add(`${cls}.${name}`);
        methodParams.set(`${cls}.${name}`, countParams(fieldFn || member));
      }
    } else if (ts.isFunctionDeclaration(stmt) && stmt.body && stmt.name) {
      functions.add(`${rel}:${nameOf(stmt)}`);
      functionParams.set(`${rel}:${nameOf(stmt)}`, countParams(stmt));
    } else if (ts.isVariableStatement(stmt)) {
      if ((stmt.modifiers || []).some((m) => m.kind === ts.SyntaxKind.DeclareKeyword)) continue;
      for (const decl of stmt.declarationList.declarations) {
        const init = decl.initializer;
        if (init && ts.isIdentifier(decl.name) && (ts.isArrowFunction(init) || ts.isFunctionExpression(init))) {
          functions.add(`${rel}:${decl.name.text}`);
          functionParams.set(`${rel}:${decl.name.text}`, countParams(init));
        }
      }
    }
  }
}
for (const v of methodParams.values()) params += v;
for (const v of functionParams.values()) params += v;
console.log(JSON.stringify({ classes: classes.size, functions: functions.size, methods: methods.size, parameters: params }));
