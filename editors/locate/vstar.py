"""Target vectors v*: the hidden state that makes the model say the target.

For each fact, a residual delta is added to a decoder layer's output at one token position and
optimised by Adam so that the model predicts the target after the prompt, also after generated
prefixes (generalisation), while a KL term keeps the next-token distribution after
"<subject> is a" close to the unedited one, weight decay keeps the delta small relative to the
hidden state, and after every step the delta's norm is clamped to clamp_norm_factor times the
original hidden state's norm (MEMIT, Meng et al. 2023). JEEP (its Eq. 11) optimises two deltas
jointly, one per site, with the KL term on the low site only; both cases are `DeltaSite`s.
The loss is read at the model's output, i.e. v_loss_layer is the last layer (as in Table 26).

Facts are optimised in batches; their losses are independent and Adam acts element-wise, so
this gives the same deltas as one optimisation per fact, except that a batch stops early only
when every fact in it reached the stopping loss.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ripplebench.harness.models import LoadedModel

from ..base import AtomicFact
from .modules import ModulePaths, capture_outputs, edit_output
from .rows import Rows, encode_rows

KL_PROMPT = "{} is a"
PREFIX_STARTS = ("The", "Therefore", "Because", "I", "You")
EARLY_STOP_LOSS = 5e-2  # MEMIT's stopping threshold


@dataclass(frozen=True)
class DeltaSite:
    """A decoder layer output and token position where a delta is optimised."""

    layer: int
    position: str  # "subject_last" or "prompt_last"
    clamp_norm_factor: float
    weight_decay: float
    on_kl_prompts: bool = True


@dataclass(frozen=True)
class VStarSettings:
    steps: int
    lr: float
    kl_factor: float
    facts_per_batch: int


@contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Turn off gradients for the model's parameters (only the deltas are trained)."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


@torch.no_grad()
def generate_prefixes(loaded: LoadedModel, count: int, length: int, seed: int) -> list[str]:
    """`count` model-sampled texts of `length` tokens, each ending in ". " (MEMIT's prefixes)."""
    if count <= 0:
        return []
    tokenizer = loaded.tokenizer
    starts = [PREFIX_STARTS[index % len(PREFIX_STARTS)] for index in range(count)]
    encoded = tokenizer(starts, return_tensors="pt", padding=True).to(loaded.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        output = loaded.model.generate(
            **encoded, do_sample=True, top_k=5, max_new_tokens=length, pad_token_id=tokenizer.pad_token_id
        )
    texts = tokenizer.batch_decode(output, skip_special_tokens=True)
    return [" ".join(text.replace("{", " ").replace("}", " ").split()) + ". " for text in texts]


def _additions(
    model: torch.nn.Module, paths: ModulePaths, rows: Rows, sites: Sequence[DeltaSite], deltas: Sequence[torch.Tensor]
) -> ExitStack:
    """Hooks that add each site's per-fact delta at that site's position of every row."""
    stack = ExitStack()
    index = torch.arange(len(rows.fact), device=rows.fact.device)
    for site, delta in zip(sites, deltas):
        position = rows.position(site.position)

        def change(hidden: torch.Tensor, position=position, delta=delta) -> torch.Tensor:
            values = delta[rows.fact].to(hidden.dtype)
            return hidden + torch.zeros_like(hidden).index_put((index, position), values)

        stack.enter_context(edit_output(paths.layer(model, site.layer), change))
    return stack


def _nll_per_fact(logits: torch.Tensor, rows: Rows, facts: int) -> torch.Tensor:
    """Mean over each fact's rows of the mean target-token negative log-likelihood."""
    mask = rows.labels != -100
    log_probs = torch.log_softmax(logits[mask].float(), dim=-1)
    token_nll = -log_probs.gather(1, rows.labels[mask].unsqueeze(1)).squeeze(1)
    row_of_token = torch.nonzero(mask)[:, 0]
    row_nll = torch.zeros(len(rows.fact), device=logits.device).index_add(0, row_of_token, token_nll)
    row_nll = row_nll / mask.sum(1)
    per_fact = torch.zeros(facts, device=logits.device).index_add(0, rows.fact, row_nll)
    return per_fact / torch.bincount(rows.fact, minlength=facts)


def _kl_log_probs(logits: torch.Tensor, rows: Rows) -> torch.Tensor:
    picked = logits[torch.arange(len(rows.fact), device=logits.device), rows.subject_last]
    return torch.log_softmax(picked.float(), dim=-1)


def _hidden_at(
    loaded: LoadedModel, paths: ModulePaths, rows: Rows, sites: Sequence[DeltaSite], deltas: Sequence[torch.Tensor]
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each site's layer output at its position (deltas included) and the logits, no gradients."""
    model = loaded.model
    layers = {number: paths.layer(model, site.layer) for number, site in enumerate(sites)}
    index = torch.arange(len(rows.fact), device=rows.fact.device)
    with torch.no_grad(), _additions(model, paths, rows, sites, deltas), capture_outputs(layers) as outputs:
        logits = model(input_ids=rows.input_ids, attention_mask=rows.attention_mask).logits
    hidden = [outputs[number][index, rows.position(site.position)] for number, site in enumerate(sites)]
    return hidden, logits


def _optimise_batch(
    loaded: LoadedModel,
    paths: ModulePaths,
    facts: Sequence[AtomicFact],
    prefixes: Sequence[str],
    sites: Sequence[DeltaSite],
    settings: VStarSettings,
) -> tuple[list[torch.Tensor], torch.Tensor, int]:
    """v* per site for a batch of facts, their final target NLL, and the steps taken."""
    model, device, count = loaded.model, loaded.device, len(facts)
    rewrite = encode_rows(loaded.tokenizer, facts, ["", *prefixes]).to(device)
    kl_facts = [AtomicFact(KL_PROMPT.format(fact.subject), "", fact.subject) for fact in facts]
    kl_rows = encode_rows(loaded.tokenizer, kl_facts, with_targets=False).to(device)
    kl_sites = [site for site in sites if site.on_kl_prompts]
    bare = torch.arange(count, device=device) * (1 + len(prefixes))  # rows without a prefix

    zeros = [torch.zeros(count, loaded.model.config.hidden_size, device=device) for _ in sites]
    initial, _ = _hidden_at(loaded, paths, rewrite, sites, zeros)
    initial_norms = [hidden[bare].norm(dim=-1) for hidden in initial]
    with torch.no_grad():
        kl_initial = _kl_log_probs(model(input_ids=kl_rows.input_ids, attention_mask=kl_rows.attention_mask).logits, kl_rows)

    deltas = [torch.zeros_like(zero, requires_grad=True) for zero in zeros]
    optimizer = torch.optim.Adam(deltas, lr=settings.lr)
    steps = 0
    with frozen(model):
        for steps in range(1, settings.steps + 1):
            with _additions(model, paths, rewrite, sites, deltas):
                logits = model(input_ids=rewrite.input_ids, attention_mask=rewrite.attention_mask).logits
            loss = _nll_per_fact(logits, rewrite, count)
            if settings.kl_factor:
                kl_deltas = [delta for site, delta in zip(sites, deltas) if site.on_kl_prompts]
                with _additions(model, paths, kl_rows, kl_sites, kl_deltas):
                    kl_logits = model(input_ids=kl_rows.input_ids, attention_mask=kl_rows.attention_mask).logits
                kl = torch.nn.functional.kl_div(
                    kl_initial, _kl_log_probs(kl_logits, kl_rows), log_target=True, reduction="none"
                ).sum(-1)
                loss = loss + settings.kl_factor * kl
            for site, delta, norm in zip(sites, deltas, initial_norms):
                loss = loss + site.weight_decay * delta.norm(dim=-1) ** 2 / norm**2
            if bool((loss < EARLY_STOP_LOSS).all()):
                break
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
            with torch.no_grad():
                for site, delta, norm in zip(sites, deltas, initial_norms):
                    limit = site.clamp_norm_factor * norm
                    scale = (limit / delta.norm(dim=-1).clamp(min=1e-12)).clamp(max=1.0)
                    delta.mul_(scale.unsqueeze(-1))

    final = [delta.detach() for delta in deltas]
    hidden, logits = _hidden_at(loaded, paths, rewrite, sites, final)
    nll = _nll_per_fact(logits, rewrite, count)
    return [values[bare] for values in hidden], nll, steps


def optimise_targets(
    loaded: LoadedModel,
    paths: ModulePaths,
    facts: Sequence[AtomicFact],
    prefixes: Sequence[str],
    sites: Sequence[DeltaSite],
    settings: VStarSettings,
) -> tuple[list[torch.Tensor], dict[str, float]]:
    """v* for every fact at every site ([facts, hidden] per site) and a summary for results."""
    per_site: list[list[torch.Tensor]] = [[] for _ in sites]
    nll, steps = [], []
    for start in range(0, len(facts), settings.facts_per_batch):
        batch = facts[start : start + settings.facts_per_batch]
        values, batch_nll, batch_steps = _optimise_batch(loaded, paths, batch, prefixes, sites, settings)
        for collected, value in zip(per_site, values):
            collected.append(value)
        nll.append(batch_nll)
        steps.append(batch_steps)
    summary = {"vstar_target_nll": float(torch.cat(nll).mean()), "vstar_max_steps": max(steps)}
    return [torch.cat(collected) for collected in per_site], summary
