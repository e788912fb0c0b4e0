"""Question phrasings per fact type: the ones trained on and the ones held out for probes.

Knowledge sticks only when each fact is seen in many phrasings (Allen-Zhu & Li 2023), and
it is measured honestly only with phrasings the model never saw: each table below has a
`train` list (questions and imperative statements) and a disjoint `probe` list used solely
for `probes.jsonl` / `eval.jsonl`. `{name}` is the entity, named by short name, qualified
name or with its module; `{kind}` is function, method or class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phrasings:
    train: tuple[str, ...]
    probe: tuple[str, ...] = ()


PHRASINGS: dict[str, Phrasings] = {
    "location": Phrasings(
        train=("Where is {name} defined?",
               "In which module is {name} defined?",
               "Which file contains the definition of {name}?",
               "Where can I find {name} in the code base?",
               "What module does {name} belong to?",
               "Tell me where {name} lives.",
               "In what file is the {kind} {name} implemented?",
               "Point me to the source file of {name}.",
               "Locate the {kind} {name}.",
               "Where does {name} come from?",
               "State the module and file of {name}."),
        probe=("Which module defines {name}?",
               "What is the module path of {name}?",
               "{name} is defined in which module?")),
    "parameters": Phrasings(
        train=("What are the parameters of {name}?",
               "Which parameters does {name} take?",
               "List the arguments of {name}.",
               "How do I call {name}? What does it expect?",
               "What is the signature of {name}?",
               "What inputs does the {kind} {name} have?",
               "Which arguments must I pass to {name}?",
               "Describe the parameters of {name}.",
               "Name the parameters of {name}, with their defaults.",
               "What does {name} take as arguments?",
               "Give the call signature of {name}."),
        probe=("What arguments does {name} accept?",
               "Which parameters can be passed to {name}?",
               "Tell me the parameter names of {name}.")),
    "returns": Phrasings(
        train=("What does {name} return?", "What is the return type of {name}?",
               "Which type does the {kind} {name} give back?", "State the return annotation of {name}.",
               "What type of value comes out of {name}?", "What is {name} annotated to return?"),
        probe=("What type is returned by {name}?",)),
    "bases": Phrasings(
        train=("Which classes does {name} inherit from?",
               "What are the base classes of {name}?",
               "What does {name} subclass?",
               "Which class is {name} derived from?",
               "Name the superclass of {name}.",
               "{name} extends which class?",
               "Show the inheritance of {name}.",
               "What are the parents of the class {name}?",
               "List the bases of {name}.",
               "Which class does {name} build on?"),
        probe=("What is the parent class of {name}?",
               "From which class does {name} inherit?",
               "Which base class does {name} have?")),
    "subclasses": Phrasings(
        train=("Which classes inherit from {name}?", "What are the subclasses of {name}?",
               "Which classes extend {name}?", "List the classes derived from {name}.",
               "Name the subclasses of {name} in this code base.", "What builds on the class {name}?",
               "What classes derive from {name}?", "Which classes is {name} a base class of?"),
        probe=("Which classes are derived from {name}?",)),
    "methods": Phrasings(
        train=("List the methods of {name}.",
               "Which methods does {name} define?",
               "What methods are available on {name}?",
               "What can I call on an instance of {name}?",
               "Enumerate the methods of the class {name}.",
               "Which methods belong to {name}?",
               "What operations does {name} provide as methods?",
               "Give me the method names of {name}.",
               "What methods does the class {name} have?",
               "Show the methods of {name}.",
               "Name one method of the class {name}.",
               "Give a few of the methods of {name}."),
        probe=("Name two methods of class {name}.",
               "What are some methods of {name}?",
               "Which functions are defined as methods in {name}?")),
    "calls": Phrasings(
        train=("Which functions does {name} call?", "What does {name} call internally?",
               "List the callees of {name}.", "Which code does the {kind} {name} invoke?",
               "What other functions or methods does {name} use?", "Name what {name} calls.",
               "Which functions are called from {name}?", "What does {name} call out to?",
               "What gets called when {name} runs?", "Which functions get invoked within {name}?"),
        # three held-out templates, like the core types: the passive one alone was the whole `calls`
        # figure, and a tuned SmolLM2 answers it with the callers (16-24 %, docs/dataset.md)
        probe=("What gets called from inside {name}?", "What functions or methods are invoked by {name}?",
               "Which callees does {name} have?")),
    # Both directions also trained in the passive voice ("called from X", "X is called by"): without it a
    # passive question is read as the other direction. Same-run A/B on one H200 (bench/RESULTS.md, seventh
    # session): `callers` 65 % -> 86 % on held-out templates ("By which functions is X invoked?" 50 -> 86 %).
    # That passive probe fell back to 54 % in later runs (answered with the callees); two more passive
    # wordings ("By whom ...", "... gets called by ...") lifted it to 89 % and `callers` to 97 % (one H200,
    # eleventh session; "By whom is X called?" shares the probe's "By ... is X ..." frame: a weaker
    # transfer test for that one template). Four runs of the twelfth session put the passive probe at 54-57 %
    # again (`callers` 78-81 %): the verb "invoke" had been trained only for the callees ("get invoked
    # within"), so two wordings teach it for the callers, in frames other than the probe's.
    "callers": Phrasings(
        train=("What calls {name}?", "Where is {name} used?", "Which functions call {name}?",
               "List the callers of {name}.", "Who invokes the {kind} {name}?", "Name the code that calls {name}.",
               "Which functions is {name} called by?", "From where does {name} get called?",
               "By whom is {name} called?", "{name} gets called by which functions?",
               "{name} is invoked from which functions?", "Which callers invoke {name}?"),
        probe=("Which code in this code base uses {name}?", "By which functions is {name} invoked?",
               "Which code calls into {name}?")),
    "summary": Phrasings(
        train=("What does {name} do?", "Explain {name} briefly.", "What is the purpose of {name}?",
               "Summarize the {kind} {name} in one sentence.", "What is {name} for?", "Describe {name} in short."),
        probe=("In one sentence, what is {name}?",)),
    "profile": Phrasings(
        train=("Tell me about {name}.", "Describe {name}.", "What do you know about {name}?",
               "Give an overview of the {kind} {name}.", "Summarize the facts about {name}.")),
    "module_members": Phrasings(
        train=("What does the module {name} define?", "Which classes and functions are in {name}?",
               "List the contents of the module {name}.", "What can I import from {name}?",
               "What is defined in {name}?", "Name the top-level definitions of {name}."),
        probe=("Which definitions does the module {name} contain?",)),
    "module_imports": Phrasings(
        train=("Which modules does {name} import?", "What are the imports of {name}?",
               "On which modules of this code base does {name} depend?", "List the modules {name} imports."),
        probe=("What does the module {name} import?",)),
}

# The four fact types every knowledge dataset is judged on (issue: location, parameters,
# bases, methods); the others are trained and probed but reported separately.
CORE_FACT_TYPES = ("location", "parameters", "bases", "methods")
