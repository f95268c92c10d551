"""Local backend speed, measured side by side in one run on the embedded SmolLM2-135M.

1. ``hf`` generation throughput vs a plain batched ``model.generate`` loop (target >= 0.9x).
1b. A prompted baseline (long system prompt + few-shot shared by every request): tunecheck's
   auto batch + shared-prefix cache vs the same without the prefix cache vs the plain loop
   (target >= 2x the plain loop, identical outputs).
2. Multiple-choice loglikelihood on the MMLU test questions of ../shared/data/probes/mmlu
   (zero-shot, lm-eval's MMLU prompt, continuations " A".." D", batch 8): tunecheck vs a
   plain batched forward loop vs lm-evaluation-harness's ``HFLM`` (targets: >= 0.95x the
   plain loop and >= 1.1x lm-eval), plus the agreement of the argmax choices.

The three loglikelihood runners take turns on slices of the questions, so a change in
machine load affects all of them alike. ``TUNECHECK_BENCH_QUICK=1`` uses fewer questions.
"""

from __future__ import annotations

import csv
import os
import time

from bench import data_file

QUICK = os.environ.get("TUNECHECK_BENCH_QUICK") == "1"
BATCH = 8


def mmlu_requests(limit: int | None = None) -> tuple[list[str], list[int]]:
    """Zero-shot prompts in lm-eval's MMLU format, and the gold answer indices."""
    contexts, gold = [], []
    for path in sorted(data_file("probes", "mmlu").glob("*_test.csv")):
        subject = path.name[: -len("_test.csv")].replace("_", " ")
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                choices = [row[f"choice{i}"] for i in range(4)]
                body = "\n".join(
                    f"{letter}. {c}" for letter, c in zip("ABCD", choices, strict=True)
                )
                contexts.append(
                    f"The following are multiple choice questions (with answers) about {subject}.\n\n"
                    f"{row['question'].strip()}\n{body}\nAnswer:"
                )
                gold.append(int(row["answer"]))
    if limit:
        contexts, gold = contexts[:limit], gold[:limit]
    return contexts, gold


def plain_loglikelihood(model, tok, contexts: list[str]) -> list[list[float]]:
    """The plain loop: contexts sorted by length (less padding), batched, one forward each,
    log-softmax at the last position for the four answer letters."""
    import torch

    choice_ids = [
        tok(f"{contexts[0]} {x}", add_special_tokens=False)["input_ids"][-1] for x in "ABCD"
    ]
    tok.padding_side = "left"
    lengths = [len(ids) for ids in tok(contexts, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(contexts)), key=lambda i: -lengths[i])
    out: list[list[float]] = [[] for _ in contexts]
    with torch.inference_mode():
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            enc = tok(
                [contexts[j] for j in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            )
            pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            logits = model(**enc, position_ids=pos).logits[:, -1, :]
            logp = torch.log_softmax(logits.float(), -1)[:, choice_ids]
            for j, row in zip(idx, logp.tolist(), strict=True):
                out[j] = row
    return out


def bench_loglikelihood() -> bool:
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunecheck.models import LoglikelihoodRequest
    from tunecheck.models.gguf import embedded_model_dir
    from tunecheck.models.hf import HFModel

    d = embedded_model_dir()
    contexts, gold = mmlu_requests(120 if QUICK else None)
    ours = HFModel.from_ref(str(d), batch_size=BATCH, dtype="float32", device="cpu")
    plain_tok = AutoTokenizer.from_pretrained(d)
    plain_model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    lm = HFLM(pretrained=str(d), batch_size=BATCH, device="cpu", dtype="float32")

    def run_ours(ctxs: list[str]) -> list[list[float]]:
        res = ours.loglikelihood([LoglikelihoodRequest(c, f" {x}") for c in ctxs for x in "ABCD"])
        return [[r.logprob for r in res[i : i + 4]] for i in range(0, len(res), 4)]

    def run_lmeval(ctxs: list[str]) -> list[list[float]]:
        insts = [
            Instance(request_type="loglikelihood", doc={}, arguments=(c, f" {x}"), idx=j)
            for c in ctxs
            for j, x in enumerate("ABCD")
        ]
        res = lm.loglikelihood(insts, disable_tqdm=True)
        return [[r[0] for r in res[i : i + 4]] for i in range(0, len(res), 4)]

    runners = {
        "tunecheck": run_ours,
        "plain loop": lambda ctxs: plain_loglikelihood(plain_model, plain_tok, ctxs),
        "lm-eval HFLM": run_lmeval,
    }
    run_ours(contexts[:8])  # warm-up (thread pools, first-call allocations), not timed
    seconds = dict.fromkeys(runners, 0.0)
    scores: dict[str, list[list[float]]] = {k: [] for k in runners}
    slice_size = 64
    for n, start in enumerate(range(0, len(contexts), slice_size)):
        part = contexts[start : start + slice_size]
        names = list(runners)
        names = names[n % 3 :] + names[: n % 3]  # rotate who goes first
        for name in names:
            t = time.perf_counter()
            scores[name].extend(runners[name](part))
            seconds[name] += time.perf_counter() - t

    q = len(contexts)
    rate = {k: q / s for k, s in seconds.items()}
    picks = {k: [max(range(4), key=row.__getitem__) for row in v] for k, v in scores.items()}
    agree_lm = (
        sum(a == b for a, b in zip(picks["tunecheck"], picks["lm-eval HFLM"], strict=True)) / q
    )
    agree_plain = (
        sum(a == b for a, b in zip(picks["tunecheck"], picks["plain loop"], strict=True)) / q
    )
    max_diff = max(
        abs(a - b)
        for ra, rb in zip(scores["tunecheck"], scores["lm-eval HFLM"], strict=True)
        for a, b in zip(ra, rb, strict=True)
    )
    acc = sum(p == g for p, g in zip(picks["tunecheck"], gold, strict=True)) / q
    print(f"MMLU loglikelihood, {q} questions x 4 choices, batch {BATCH}, SmolLM2-135M fp32 CPU")
    for k in runners:
        print(f"  {k:<13} {seconds[k]:7.1f} s  {rate[k]:6.2f} questions/s")
    r_plain = rate["tunecheck"] / rate["plain loop"]
    r_lm = rate["tunecheck"] / rate["lm-eval HFLM"]
    print(f"  tunecheck / plain loop = {r_plain:.2f}x (target >= 0.95x)")
    print(f"  tunecheck / lm-eval    = {r_lm:.2f}x (target >= 1.10x)")
    print(f"  argmax agreement with lm-eval {agree_lm:.1%}, with the plain loop {agree_plain:.1%}")
    print(f"  max |logprob difference| vs lm-eval {max_diff:.2e}; accuracy {acc:.1%}")
    return r_plain >= 0.95 and r_lm >= 1.1 and agree_lm >= 0.995


def plain_generate(model, tok, chats, new_tokens: int) -> list:
    """The reference loop: chat template, left padding, batches of BATCH, greedy ``generate``.

    Returns the new tokens of every prompt (pad-filled after an early end)."""
    import torch

    texts = [
        tok.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True) for c in chats
    ]
    tok.padding_side = "left"
    rows: list = []
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            enc = tok(
                texts[i : i + BATCH], return_tensors="pt", padding=True, add_special_tokens=False
            )
            out = model.generate(
                **enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
            rows += list(out[:, enc["input_ids"].shape[1] :])
    return rows


def bench_generation() -> bool:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunecheck.models import GenerationParams, GenerationRequest
    from tunecheck.models.gguf import embedded_model_dir
    from tunecheck.models.hf import HFModel

    d = embedded_model_dir()
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    ours = HFModel.from_loaded(model, tok, fingerprint="bench", batch_size=BATCH)
    contexts, _ = mmlu_requests(16 if QUICK else 32)
    questions = [c.split("\n\n", 1)[1].split("\n")[0] for c in contexts]
    new_tokens = 32
    chats = [[{"role": "user", "content": q}] for q in questions]
    reqs = [GenerationRequest(tuple(c), GenerationParams(max_new_tokens=new_tokens)) for c in chats]

    def plain() -> int:
        rows = plain_generate(model, tok, chats, new_tokens)
        return sum(int((row != tok.pad_token_id).sum()) for row in rows)

    def tunecheck() -> int:
        return sum(g.completion_tokens or 0 for g in ours.generate(reqs))

    ours.generate(reqs[:2])  # warm-up
    seconds = {"tunecheck": 0.0, "plain generate": 0.0}
    tokens = dict.fromkeys(seconds, 0)
    for rnd in range(2):  # alternate the order so load changes hit both
        order = [("tunecheck", tunecheck), ("plain generate", plain)]
        for name, fn in order if rnd == 0 else order[::-1]:
            t = time.perf_counter()
            tokens[name] += fn()
            seconds[name] += time.perf_counter() - t
    n = 2 * len(reqs)
    print(
        f"generation, {len(reqs)} chat prompts x 2 rounds, {new_tokens} new tokens, batch {BATCH}, greedy"
    )
    for k in seconds:
        print(
            f"  {k:<15} {seconds[k]:6.1f} s  {n / seconds[k]:5.2f} prompts/s  ({tokens[k]} tokens)"
        )
    ratio = seconds["plain generate"] / seconds["tunecheck"]
    print(f"  tunecheck / plain generate = {ratio:.2f}x (target >= 0.90x)")
    return ratio >= 0.9


def bench_prompted_generation() -> bool:
    """A prompted baseline: the demo's 373-token system prompt + 4 shots before every message.

    tunecheck (``batch_size: auto``, shared-prefix cache) vs the same backend with the prefix
    cache off at the same batch size vs a plain batched ``generate`` loop at batch 8. The
    outputs must be identical; the target is >= 2x the plain loop.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunecheck.demo.task import SYSTEM_PROMPT, few_shot_examples, generate_support_tickets
    from tunecheck.examples import Example
    from tunecheck.models import GenerationParams, GenerationRequest
    from tunecheck.models.gguf import embedded_model_dir
    from tunecheck.models.hf import HFModel
    from tunecheck.prompts import Prompt

    d = embedded_model_dir()
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    rows = generate_support_tickets(400, seed=7)
    prompt = Prompt(system=SYSTEM_PROMPT, few_shot=tuple(few_shot_examples(rows[:300], 4, seed=7)))
    # 64 messages took 10 minutes for the three runners on a 2-core CPU; 32 keep it near 5
    messages = [r["input"] for r in rows[300 : 300 + (16 if QUICK else 32)]]
    params = GenerationParams(max_new_tokens=32)
    chats = [prompt.render(Example(id=str(i), input=m)) for i, m in enumerate(messages)]
    reqs = [GenerationRequest(tuple(c), params) for c in chats]
    cached = HFModel.from_loaded(model, tok, fingerprint="bench")
    no_prefix = HFModel.from_loaded(
        model, tok, fingerprint="bench", batch_size=cached.current_batch_size, prefix_cache=False
    )

    def plain() -> list[str]:
        rows = plain_generate(model, tok, chats, params.max_new_tokens)
        return tok.batch_decode(rows, skip_special_tokens=True)

    runners = {
        "tunecheck": lambda: [g.text for g in cached.generate(reqs)],
        "no prefix cache": lambda: [g.text for g in no_prefix.generate(reqs)],
        "plain generate": plain,
    }
    cached.generate(reqs[:2])  # warm-up
    seconds = dict.fromkeys(runners, 0.0)
    outputs: dict[str, list[str]] = {}
    for rnd in range(2):  # alternate the order so load changes hit all of them
        order = list(runners.items())
        for name, fn in order if rnd == 0 else order[::-1]:
            t = time.perf_counter()
            outputs[name] = fn()
            seconds[name] += time.perf_counter() - t
    prompt_tokens = len(
        tok(
            tok.apply_chat_template(list(chats[0]), tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        )["input_ids"]
    )
    print(
        f"prompted generation: {len(reqs)} messages x 2 rounds, ~{prompt_tokens}-token prompts "
        f"sharing system prompt + 4 shots, {params.max_new_tokens} new tokens, greedy; "
        f"tunecheck batch {cached.current_batch_size}, plain batch {BATCH}"
    )
    for k in seconds:
        print(f"  {k:<16} {seconds[k]:6.1f} s  {2 * len(reqs) / seconds[k]:5.2f} prompts/s")
    same = sum(a == b for a, b in zip(outputs["tunecheck"], outputs["plain generate"], strict=True))
    same_np = sum(
        a == b for a, b in zip(outputs["tunecheck"], outputs["no prefix cache"], strict=True)
    )
    print(
        f"  identical outputs: {same}/{len(reqs)} vs plain generate, "
        f"{same_np}/{len(reqs)} vs no prefix cache"
    )
    ratio = seconds["plain generate"] / seconds["tunecheck"]
    prefix_gain = seconds["no prefix cache"] / seconds["tunecheck"]
    print(
        f"  tunecheck / plain generate = {ratio:.2f}x (target >= 2x); "
        f"prefix cache alone = {prefix_gain:.2f}x"
    )
    return ratio >= 2.0 and same == len(reqs)


def main() -> bool:
    ok_gen = bench_generation()
    ok_prompted = bench_prompted_generation()
    ok_ll = bench_loglikelihood()
    return ok_gen and ok_prompted and ok_ll


if __name__ == "__main__":
    import sys

    sys.exit(0 if main() else 1)
