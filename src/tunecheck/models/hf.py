"""The ``hf`` backend: a local transformers causal LM (a folder, a GGUF file, or a LoRA over one).

Model references::

    hf:path/to/model                       a transformers folder (or a hub id already in the cache)
    hf:path/to/model.gguf                  dequantized once into a cached folder
    hf:path/to/base+adapter=path/to/lora   a PEFT adapter applied over the base

Options: ``device`` (``auto`` → cuda, mps, cpu), ``dtype`` (``auto`` → bf16 on a GPU that
supports it, else fp32), ``batch_size`` (int, or ``auto``: halve on out-of-memory and retry),
``max_length`` (context window; longer prompts are cut from the left), ``prefix_cache``
(default true: a prompt prefix shared by a whole batch, such as a long system prompt with
few-shot examples, is run through the model once and its key/value cache reused by every row).

torch, transformers and peft are imported inside the methods that need them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tunecheck.errors import BackendError
from tunecheck.models.base import (
    Generation,
    GenerationParams,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Progress,
    Prompt,
    backend,
)

# re-exported: the loading helpers lived here first and users import them from this module
from tunecheck.models.hf_loading import (  # noqa: F401
    Batcher,
    ModelRef,
    TensorFingerprint,
    TransformersModel,
    apply_adapter,
    check_options,
    eval_mode,
    file_sha256,
    folder_digest,
    is_oom,
    load_tokenizer,
    parse_batch_size,
    parse_ref,
    ref_fingerprint,
    resolve_device,
    resolve_dtype,
)
from tunecheck.models.identity import identity_settings

log = logging.getLogger(__name__)

_KNOWN_OPTIONS = {"device", "dtype", "batch_size", "max_length", "prefix_cache"}
_DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "dtype": "auto",
    "batch_size": "auto",
    "max_length": None,
    "prefix_cache": True,
}


def _option_values(options: dict[str, Any]) -> tuple[int | None, int | None, bool]:
    """``batch_size``, ``max_length`` and ``prefix_cache``, checked."""
    batch_size = parse_batch_size(options.get("batch_size", "auto"))
    max_length = options.get("max_length")
    prefix_cache = options.get("prefix_cache", True)
    if not isinstance(prefix_cache, bool):
        raise BackendError(
            f"invalid prefix_cache {prefix_cache!r}",
            where="option prefix_cache",
            hint="true or false",
        )
    if max_length is not None and (
        not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2
    ):
        raise BackendError(
            f"invalid max_length {max_length!r}",
            where="option max_length",
            hint="a positive integer",
        )
    return batch_size, max_length, prefix_cache


def _identity(options: dict[str, Any], device: str, dtype: Any) -> dict[str, Any]:
    """The options in the fingerprint: all but the safe ones, device and dtype as resolved.

    The device is in the key: the same weights can give another greedy answer on
    another kind of device (different kernels, different rounding).
    """
    return identity_settings("hf", {**options, "device": device, "dtype": str(dtype)}, _DEFAULTS)


# first batch size tried by ``batch_size: auto``; halved on out-of-memory. On a CPU, decoding
# is bound by reading the weights once per step, so wide batches are nearly free (SmolLM2-135M:
# 67 ms/step at 1 row, 181 ms at 32); memory is kept in check by _CPU_KV_BUDGET instead.
_AUTO_START = {"cuda": 64, "mps": 16, "cpu": 32}
# CPU out-of-memory kills the process rather than raising, so ``auto`` also caps a batch's
# key/value cache (rows x tokens x bytes per token) at this many bytes.
_CPU_KV_BUDGET = 2 * 1024**3
# a shared prefix shorter than this is not worth a separate forward pass
_MIN_SHARED_PREFIX = 32


def sample_seed(request: GenerationRequest, index: int) -> int:
    """Seed of sample ``index``: sample i of seed s is sample 0 of seed s+i, whatever the batch."""
    single = replace(request, params=replace(request.params, n=1, seed=request.params.seed + index))
    return int(single.cache_key()[:15], 16)


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: str) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = 1
    return ids.to(device), mask.to(device)


def _common_prefix_len(rows: Sequence[Sequence[int]], limit: int) -> int:
    first = rows[0]
    n = min(limit, len(first))
    for r in rows[1:]:
        k = 0
        while k < n and r[k] == first[k]:
            k += 1
        n = k
    return max(0, n)


def _pad_after_prefix(
    rows: Sequence[Sequence[int]], n_prefix: int, pad_id: int, device: str
) -> tuple[Any, Any]:
    """``[shared prefix][padding][own suffix]`` rows: the prefix lines up with its cache and
    every prompt still ends in the last column; positions come from the mask, so the
    padding in the middle shifts nothing."""
    import torch

    prefix = list(rows[0][:n_prefix])
    suffixes = [list(r[n_prefix:]) for r in rows]
    width = max(len(s) for s in suffixes)
    ids = torch.full((len(rows), n_prefix + width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n_prefix + width), dtype=torch.long)
    ids[:, :n_prefix] = torch.tensor(prefix, dtype=torch.long)
    mask[:, :n_prefix] = 1
    for i, s in enumerate(suffixes):
        ids[i, n_prefix + width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[i, n_prefix + width - len(s) :] = 1
    return ids.to(device), mask.to(device)


# --------------------------------------------------------------------------- the backend


@backend("hf")
class HFModel(TransformersModel):
    """A local transformers causal LM. Build with :meth:`from_ref` or :meth:`from_loaded`."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        fingerprint: str | None,
        device: str,
        batch_size: int | None = None,
        max_length: int | None = None,
        prefix_cache: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.current_batch_size = batch_size or _AUTO_START.get(device.split(":")[0], 8)
        self._fingerprint = fingerprint
        self._tensor_fp = None if fingerprint else TensorFingerprint(model)
        self.max_length = max_length or self._model_max_length()
        self.pad_id, self.eos_ids = self._special_ids()
        self.prefix_cache = prefix_cache
        self._prefix: tuple[tuple[int, ...], Any] | None = None  # last shared prefix and its cache

    # ----------------------------------------------------------------- construction
    @classmethod
    def fingerprint_for(cls, target: str, **options: Any) -> str:
        """The fingerprint :meth:`from_ref` would give, computed without loading the weights."""
        where = f"model hf:{target}"
        check_options(options, where, _KNOWN_OPTIONS)
        ref = parse_ref(target, where=where)
        device = resolve_device(options.get("device"))
        return ref_fingerprint(
            "hf", ref, _identity(options, device, resolve_dtype(options.get("dtype"), device))
        )

    @classmethod
    def validate_ref(cls, target: str, **options: Any) -> None:
        """Check a reference and its options without loading weights (pre-flight)."""
        where = f"model hf:{target}"
        check_options(options, where, _KNOWN_OPTIONS)
        parse_ref(target, where=where)
        resolve_dtype(options.get("dtype"), resolve_device(options.get("device")))
        _option_values(options)

    @classmethod
    def from_ref(cls, target: str, **options: Any) -> HFModel:
        """Load ``target`` (folder, ``.gguf`` file, or ``base+adapter=path``) with backend options."""
        where = f"model hf:{target}"
        check_options(options, where, _KNOWN_OPTIONS)
        ref = parse_ref(target, where=where)
        device = resolve_device(options.get("device"))
        dtype = resolve_dtype(options.get("dtype"), device)
        batch_size, max_length, prefix_cache = _option_values(options)

        from transformers import AutoModelForCausalLM

        tokenizer = load_tokenizer(ref, where)
        try:
            model = AutoModelForCausalLM.from_pretrained(str(ref.base), dtype=dtype)
        except (OSError, ValueError, KeyError) as err:
            raise BackendError(
                f"could not load the model: {err}", where=f"{where}: {ref.base}"
            ) from None
        model = apply_adapter(model, ref, where).to(device)
        model.eval()
        return cls(
            model,
            tokenizer,
            name=target,
            fingerprint=ref_fingerprint("hf", ref, _identity(options, device, dtype)),
            device=device,
            batch_size=batch_size,
            max_length=max_length,
            prefix_cache=prefix_cache,
        )

    @classmethod
    def from_loaded(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "in-memory",
        fingerprint: str | None = None,
        batch_size: int | str | None = "auto",
        max_length: int | None = None,
        prefix_cache: bool = True,
    ) -> HFModel:
        """Wrap an already-loaded model (no copy, no reload), e.g. the one being trained.

        Without ``fingerprint`` the identity is a hash of the current parameter values,
        recomputed (for changed tensors only) whenever it is read, so training steps change it.
        The model's train/eval mode is left as it was after every call.
        """
        device = str(next(model.parameters()).device)
        wrapped = cls(
            model,
            tokenizer,
            name=name,
            fingerprint=fingerprint,
            device=device,
            batch_size=parse_batch_size(batch_size),
            max_length=max_length,
            prefix_cache=prefix_cache,
        )
        # a shorter context truncates prompts: another answer, so another identity
        if max_length is not None:
            wrapped._loaded_settings = {"max_length": max_length}
        return wrapped

    def close(self) -> None:
        self.model = None
        self._prefix = None
        self._empty_cache()

    # ----------------------------------------------------------------- internals
    def _model_max_length(self) -> int:
        cfg = getattr(self.model, "config", None)
        n = getattr(cfg, "max_position_embeddings", None)
        tok_n = getattr(self.tokenizer, "model_max_length", None)
        if n is None and tok_n and tok_n < 10**8:
            n = tok_n
        return int(n or 2048)

    def _kv_bytes_per_token(self) -> int | None:
        # any config shape: a missing field is caught below
        cfg: Any = getattr(self.model, "config", None)
        cfg = getattr(cfg, "text_config", None) or cfg
        try:
            layers = int(cfg.num_hidden_layers)
            heads = int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
            head_dim = int(
                getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
            )
            elem = next(self.model.parameters()).element_size()
        except (AttributeError, TypeError, ValueError, StopIteration):
            return None
        return 2 * layers * heads * head_dim * elem

    def rows_that_fit(self, tokens: int) -> int:
        """Rows of ``tokens`` tokens one batch may hold (CPU with ``batch_size: auto`` only)."""
        if self.batch_size is not None or not self.device.startswith("cpu"):
            return self.current_batch_size
        per_token = self._kv_bytes_per_token()
        if not per_token:
            return self.current_batch_size
        return max(1, min(self.current_batch_size, _CPU_KV_BUDGET // (per_token * max(1, tokens))))

    def _special_ids(self) -> tuple[int, tuple[int, ...]]:
        tok = self.tokenizer
        eos: list[int] = []
        if tok.eos_token_id is not None:
            eos.append(int(tok.eos_token_id))
        gen_cfg = getattr(self.model, "generation_config", None)
        cfg_eos = getattr(gen_cfg, "eos_token_id", None)
        for e in cfg_eos if isinstance(cfg_eos, list) else [cfg_eos]:
            if e is not None and int(e) not in eos:
                eos.append(int(e))
        pad = tok.pad_token_id
        if pad is None:
            pad = eos[0] if eos else 0
        return int(pad), tuple(eos)

    def render_prompt(self, prompt: Prompt) -> str:
        """The exact text the model sees: chat template applied, raw text unchanged."""
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(
                "this model has no chat template but the prompt is a chat conversation",
                where=f"model {self.name}",
                hint="set `chat: false` in the contender's prompt to send plain text",
            )
        return str(
            self.tokenizer.apply_chat_template(
                [dict(m) for m in prompt], tokenize=False, add_generation_prompt=True
            )
        )

    def _encode_prompt(self, prompt: Prompt) -> list[int]:
        text = self.render_prompt(prompt)
        # a chat template already writes any BOS token itself
        ids = self.tokenizer(text, add_special_tokens=isinstance(prompt, str))["input_ids"]
        return list(ids)

    # ----------------------------------------------------------------- generate
    def generate(
        self, requests: Sequence[GenerationRequest], progress: Progress | None = None
    ) -> list[Generation]:
        if not requests:
            return []
        if self._fingerprint is None:
            # a wrapped in-memory model may be training between calls: its cached prefix is stale
            self._prefix = None
        # one row per sample; greedy requests need one row whatever n is
        rows: list[tuple[int, int, list[int], GenerationParams, bool]] = []
        samples_left: list[int] = []
        for r_idx, req in enumerate(requests):
            p = req.params
            ids = self._encode_prompt(req.prompt)
            truncated = False
            room = self.max_length - p.max_new_tokens
            if room < 1:
                raise BackendError(
                    f"max_new_tokens {p.max_new_tokens} does not fit the context window of {self.max_length}",
                    where=f"model {self.name}",
                    hint="lower max_new_tokens",
                )
            if len(ids) > room:
                ids, truncated = ids[-room:], True
                log.warning("prompt of request %r cut from the left to %d tokens", req.id, room)
            n_rows = p.n if p.temperature > 0 else 1
            samples_left.append(n_rows)
            for s in range(n_rows):
                rows.append((r_idx, s, ids, p, truncated))

        texts: list[list[str]] = [
            [""] * (r.params.n if r.params.temperature > 0 else 1) for r in requests
        ]
        counts: list[list[int]] = [[0] * len(t) for t in texts]
        prompt_lens = [0] * len(requests)
        cut = [False] * len(requests)

        # rows with equal params share a generate() call; longest first so memory errors come early
        groups: dict[
            GenerationParams, list[tuple[int, int, list[int], GenerationParams, bool]]
        ] = {}
        for row in rows:
            groups.setdefault(row[3], []).append(row)
        with eval_mode(self.model):
            for params, group in groups.items():
                group.sort(key=lambda r: -len(r[2]))
                batcher = Batcher(self)
                for batch, outs in batcher.run(
                    group,
                    lambda b, p=params: self._generate_batch(b, p, requests),
                    width=lambda r: len(r[2]) + r[3].max_new_tokens,
                ):
                    finished = 0
                    for (r_idx, s, ids, _, trunc), (text, n_tok) in zip(batch, outs, strict=True):
                        texts[r_idx][s] = text
                        counts[r_idx][s] = n_tok
                        prompt_lens[r_idx] = len(ids)
                        cut[r_idx] = cut[r_idx] or trunc
                        samples_left[r_idx] -= 1
                        finished += samples_left[r_idx] == 0
                    if progress and finished:
                        progress(finished)

        results = []
        for r_idx, req in enumerate(requests):
            t, c = texts[r_idx], counts[r_idx]
            if len(t) < req.params.n:  # greedy with n > 1: the same answer n times
                t, c = t * req.params.n, c * req.params.n
            meta: dict[str, Any] = {}
            if req.params.n > 1:
                meta["sample_completion_tokens"] = c
            if cut[r_idx]:
                meta["prompt_truncated"] = True
            results.append(
                Generation(
                    texts=t, prompt_tokens=prompt_lens[r_idx], completion_tokens=sum(c), meta=meta
                )
            )
        return results

    def _generate_batch(
        self,
        batch: list[tuple[int, int, list[int], GenerationParams, bool]],
        params: GenerationParams,
        requests: Sequence[GenerationRequest],
    ) -> list[tuple[str, int]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        rows = [r[2] for r in batch]
        cache = self._shared_prefix_cache(rows)
        if cache is None:
            input_ids, mask = _left_pad(rows, self.pad_id, self.device)
        else:
            input_ids, mask = _pad_after_prefix(rows, cache[0], self.pad_id, self.device)
        config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=list(self.eos_ids) or None,
            pad_token_id=self.pad_id,
            use_cache=True,
        )
        processors = LogitsProcessorList()
        if params.temperature > 0:
            seeds = [sample_seed(requests[r[0]], r[1]) for r in batch]
            processors.append(_SeededSampler(params.temperature, params.top_p, seeds, self.device))
        criteria = StoppingCriteriaList()
        if params.stop:
            criteria.append(_StopOnStrings(self.tokenizer, params.stop, input_ids.shape[1]))
        extra: dict[str, Any] = {}
        if cache is not None:
            # generate() skips the tokens already in the cache; each row gets its own copy
            rows_cache = copy.deepcopy(cache[1])
            rows_cache.batch_repeat_interleave(len(batch))
            extra["past_key_values"] = rows_cache
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            generation_config=config,
            logits_processor=processors,
            stopping_criteria=criteria,
            **extra,
        )
        new = out[:, input_ids.shape[1] :].tolist()
        results = []
        end_ids = set(self.eos_ids)
        for row in new:
            n_tok = len(row)
            for j, t in enumerate(row):
                if t in end_ids:
                    n_tok = j + 1
                    break
            text = self.tokenizer.decode(row[:n_tok], skip_special_tokens=True)
            results.append((_cut_at_stop(text, params.stop), n_tok))
        del out, input_ids, mask
        if torch.cuda.is_available() and self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return results

    def _shared_prefix_cache(self, rows: Sequence[Sequence[int]]) -> tuple[int, Any] | None:
        """``(prefix length, key/value cache)`` for the prefix every row shares, or None.

        A prompted baseline repeats its system prompt and few-shot examples in every
        request; computing them once per batch instead of once per row is most of the
        work saved (the demo's 700-token prompt shares ~600 tokens). The last prefix is
        kept, so the next batch reuses it while it still is a prefix of all its rows (across
        calls only when the weights cannot change: a model with a fixed fingerprint).
        """
        if not self.prefix_cache or len(rows) < 2:
            return None
        # every row keeps at least one token of its own
        n = _common_prefix_len(rows, min(len(r) for r in rows) - 1)
        kept = self._prefix
        # reuse the kept prefix unless this batch shares a much longer one
        if (
            kept is not None
            and len(kept[0]) <= n < 2 * len(kept[0])
            and tuple(rows[0][: len(kept[0])]) == kept[0]
        ):
            return len(kept[0]), kept[1]
        if n < _MIN_SHARED_PREFIX:
            return None
        import torch

        prefix = tuple(rows[0][:n])
        ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
        try:
            out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            if not hasattr(cache, "batch_repeat_interleave"):
                raise TypeError(f"{type(cache).__name__} cannot be copied per row")
        except (TypeError, ValueError, AttributeError, NotImplementedError) as err:
            log.warning(
                "prefix cache unavailable for %s (%s); running full prompts", self.name, err
            )
            self.prefix_cache = False
            return None
        self._prefix = (prefix, cache)
        return n, cache

    # ----------------------------------------------------------------- loglikelihood
    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's split: trailing context spaces move to the continuation; the
        continuation tokens are those of context+continuation after the context's tokens."""
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        tok = self.tokenizer
        whole = list(tok(context + continuation, add_special_tokens=False)["input_ids"])
        ctx = list(tok(context, add_special_tokens=False)["input_ids"]) if context else []
        cont = whole[len(ctx) :]
        if not ctx:  # nothing to condition on: start from the BOS/EOS token, like lm-eval
            bos = tok.bos_token_id if tok.bos_token_id is not None else self.eos_ids[0]
            ctx = [int(bos)]
        return ctx, cont

    def loglikelihood(
        self, requests: Sequence[LoglikelihoodRequest], progress: Progress | None = None
    ) -> list[LoglikelihoodResult]:
        if not requests:
            return []
        # group by context token ids: a shared context is run once for all its continuations
        groups: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = {}
        for i, req in enumerate(requests):
            ctx, cont = self._encode_pair(req.context, req.continuation)
            if not cont:
                raise BackendError(
                    f"request {req.id or i}: the continuation is empty",
                    hint="every choice needs some text",
                )
            groups.setdefault(tuple(ctx), {}).setdefault(tuple(cont), []).append(i)
        items = []
        for ctx_ids, conts in groups.items():
            longest = max(len(c) for c in conts)
            room = self.max_length - longest + 1
            if room < 1:
                raise BackendError(
                    f"a continuation of {longest} tokens does not fit the context window {self.max_length}",
                    where=f"model {self.name}",
                )
            items.append((list(ctx_ids[-room:]), list(conts.items())))
        items.sort(key=lambda it: -(len(it[0]) + max(len(c) for c, _ in it[1])))

        results: list[LoglikelihoodResult | None] = [None] * len(requests)
        with eval_mode(self.model):
            for batch, outs in Batcher(self).run(items, self._loglikelihood_batch):
                done = 0
                for (_, conts), group_out in zip(batch, outs, strict=True):
                    for (cont, idxs), res in zip(conts, group_out, strict=True):
                        for i in idxs:
                            results[i] = LoglikelihoodResult(
                                logprob=res[0], is_greedy=res[1], n_tokens=len(cont)
                            )
                            done += 1
                if progress:
                    progress(done)
        return [r for r in results if r is not None]

    def _loglikelihood_batch(
        self, batch: list[tuple[list[int], list[tuple[tuple[int, ...], list[int]]]]]
    ) -> list[list[tuple[float, bool]]]:
        import torch

        ctx_ids, ctx_mask = _left_pad([b[0] for b in batch], self.pad_id, self.device)
        # explicit positions: left padding must not shift the real tokens' positions
        ctx_pos = (ctx_mask.cumsum(-1) - 1).clamp(min=0)
        need_cache = any(len(c) > 1 for _, conts in batch for c, _ in conts)
        out = self.model(
            input_ids=ctx_ids,
            attention_mask=ctx_mask,
            position_ids=ctx_pos,
            use_cache=need_cache,
            logits_to_keep=1,
        )
        first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)  # predicts each first token
        first_greedy = first.argmax(-1)

        # multi-token continuations: run their tokens over a copy of the context's cache
        multi = [
            (g, j)
            for g, (_, conts) in enumerate(batch)
            for j, (c, _) in enumerate(conts)
            if len(c) > 1
        ]
        rest: dict[tuple[int, int], tuple[float, bool]] = {}
        if multi:
            cache = out.past_key_values
            cache.batch_select_indices(torch.tensor([g for g, _ in multi], device=self.device))
            tails = [list(batch[g][1][j][0]) for g, j in multi]
            width = max(len(t) - 1 for t in tails)
            ids = torch.full((len(multi), width), self.pad_id, dtype=torch.long)
            tail_mask = torch.zeros((len(multi), width), dtype=torch.long)
            for r, t in enumerate(tails):
                ids[r, : len(t) - 1] = torch.tensor(t[:-1])
                tail_mask[r, : len(t) - 1] = 1
            ids, tail_mask = ids.to(self.device), tail_mask.to(self.device)
            sel = torch.tensor([g for g, _ in multi], device=self.device)
            start = ctx_mask[sel].sum(-1, keepdim=True)
            pos = start + torch.arange(width, device=self.device)[None, :]
            full_mask = torch.cat([ctx_mask[sel], tail_mask], dim=1)
            logits = self.model(
                input_ids=ids,
                attention_mask=full_mask,
                position_ids=pos,
                past_key_values=cache,
                use_cache=True,
            ).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for r, (g, j) in enumerate(multi):
                t = tails[r]
                target = torch.tensor(t[1:], device=self.device)
                lp = logp[r, : len(t) - 1]
                tok_lp = lp.gather(-1, target[:, None]).squeeze(-1)
                greedy = bool((lp.argmax(-1) == target).all())
                rest[(g, j)] = (float(tok_lp.double().sum()), greedy)

        results = []
        for g, (_, conts) in enumerate(batch):
            group = []
            for j, (c, _) in enumerate(conts):
                lp0 = float(first[g, c[0]])
                greedy0 = int(first_greedy[g]) == c[0]
                if len(c) > 1:
                    lp_rest, greedy_rest = rest[(g, j)]
                    group.append((lp0 + lp_rest, greedy0 and greedy_rest))
                else:
                    group.append((lp0, greedy0))
            results.append(group)
        return results


# --------------------------------------------------------------------------- decoding helpers


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    cut = len(text)
    for s in stop:
        k = text.find(s)
        if k != -1:
            cut = min(cut, k)
    return text[:cut]


def _make_stopper() -> type:
    from transformers import StoppingCriteria

    class StopOnStrings(StoppingCriteria):
        """Marks a row finished once its generated text contains a stop string."""

        def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_len: int) -> None:
            self.tokenizer = tokenizer
            self.stop = tuple(stop)
            self.prompt_len = prompt_len
            self.done: Any = None

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            if self.done is None:
                self.done = torch.zeros(
                    input_ids.shape[0], dtype=torch.bool, device=input_ids.device
                )
            for i in range(input_ids.shape[0]):
                if self.done[i]:
                    continue
                text = self.tokenizer.decode(
                    input_ids[i, self.prompt_len :], skip_special_tokens=True
                )
                if any(s in text for s in self.stop):
                    self.done[i] = True
            return self.done.clone()

    return StopOnStrings


def _make_sampler() -> type:
    from transformers import LogitsProcessor

    class SeededSampler(LogitsProcessor):
        """Temperature/top-p sampling with one random stream per row (Gumbel-max).

        Generation stays greedy; this processor adds each row's own Gumbel noise to the
        nucleus, so the argmax IS a sample and row i's draws never depend on other rows.
        """

        def __init__(
            self, temperature: float, top_p: float, seeds: Sequence[int], device: str
        ) -> None:
            import torch

            self.temperature = temperature
            self.top_p = top_p
            self.generators = []
            for s in seeds:
                g = torch.Generator(device=device)
                g.manual_seed(s)
                self.generators.append(g)

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            import torch

            logits = scores.float() / self.temperature
            if self.top_p < 1.0:
                sorted_logits, order = logits.sort(dim=-1, descending=True)
                cum = sorted_logits.softmax(-1).cumsum(-1)
                drop = (
                    cum - sorted_logits.softmax(-1) >= self.top_p
                )  # keep the token crossing top_p
                drop = torch.zeros_like(drop).scatter(-1, order, drop)
                logits = logits.masked_fill(drop, float("-inf"))
            noise = torch.stack(
                [
                    torch.rand(logits.shape[-1], generator=g, device=logits.device).clamp_(
                        1e-20, 1.0
                    )
                    for g in self.generators
                ]
            )
            return logits - torch.log(-torch.log(noise))

    return SeededSampler


class _LazyClass:
    """Defers subclassing transformers classes until first use (keeps the import light)."""

    def __init__(self, factory: Any) -> None:
        self.factory = factory
        self.cls: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.cls is None:
            self.cls = self.factory()
        return self.cls(*args, **kwargs)


_StopOnStrings = _LazyClass(_make_stopper)
_SeededSampler = _LazyClass(_make_sampler)
