"""Meta-training the hypernetwork (`ripplebench train-editor CONFIG`).

One loop covers the three methods (PropMEND paper, Figure 2 and Algorithm 1):

    for each sampled sequence of `turns` turns, each editing `edits_per_turn` instances:
        W_t   <- weights as the previous turns left them (W_1 = W)
        dW_t  <- g_phi(rank-1 factors of grad L_inner(edits of turn t) at W_t)
        L_t   <- sum_{i < back_depth} decay^i (c_edit L_e(turn t-i) + L_loc(turn t-i)) at W_t + dW_t
                 + reg_coef * ||dW_t||^2
        W_t+1 <- W_t + dW_t (detached)
    Adam step on phi after `batch_size` sequences (gradient accumulation).

MEND and PropMEND are the case turns = edits_per_turn = back_depth = 1 (reg_coef 0); they
differ in the inner loss (sft | clm) and the outer edit loss (paraphrase | propagation).
RLEdit (Li et al. 2025) is turns > 1 with its discounted sum over the last `back_depth` turns
and its L2 penalty on the update; RLEdit's reference code builds the update with MALMEN's
least-squares aggregation, here it is MEND's rank-1 sum so that one network serves all three.
The locality reference of turn t is W_t, the model before this turn's edit, as in RLEdit.

Defaults are Table 25 (c_edit 0.1, Adam, lr 1e-6 for phi, 1e-4 for the step sizes, batch 10
after accumulation, validation every 100 steps, patience 2000, 1 hidden layer of 1920,
no parameter sharing). Progress: validation loss (the early-stopping key, as MEND's
`loss/total_edit_val`) and, if `val_generate`, EM efficacy/specificity with greedy decoding.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from pathlib import Path
from typing import Any, Mapping, Protocol

import torch
import yaml
from torch.func import functional_call
from tqdm import tqdm

from ripplebench.core.models import LoadedModel, load_model, resolve_model
from ripplebench.core.prompts import resolve_prompt_format
from ripplebench.editors.base import Editor

from .checkpoint import TrainedHypernet, fingerprint, read_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import Instance, LocalityPool, read_instances
from .editor import HypernetConfig, HypernetEditor
from .grads import rank1_factors, target_weights
from .losses import TokenBatch, inner_batch, locality_kl, pair_batch, question_batch, token_nll
from .network import HyperNetwork


class GenerationScorer(Protocol):
    """Scores an editor by greedy generation (the harness's edit-then-query engine): after
    editing each group of instances, exact match on their propagation questions
    (`val_efficacy`) and specificity questions (`val_specificity`)."""

    def __call__(
        self, loaded: LoadedModel, prompt_format: str, editor: Editor, groups: list[list[Instance]]
    ) -> dict[str, float]: ...


class MetaTrainer:
    """Holds the frozen model, the data, the hypernetwork and its optimizer.

    Data files are the config's, else `default_files` (the harness passes the dataset's
    committed "train" and "validation" splits); the `val_generate` metrics need a `scorer`,
    which the harness provides too.
    """

    def __init__(
        self,
        config: TrainConfig,
        scorer: GenerationScorer | None = None,
        default_files: Mapping[str, str | Path] | None = None,
    ) -> None:
        config.check()
        defaults = default_files or {}
        train_file = config.train_file or defaults.get("train")
        validation_file = config.validation_file or defaults.get("validation")
        if not (train_file and validation_file):
            raise ValueError("No training data: set train_file and validation_file in the training config.")
        if config.val_generate and scorer is None:
            raise ValueError("val_generate needs a generation scorer (the harness passes one).")
        self.config = config
        self.scorer = scorer
        self.out_dir = Path(config.out_dir)
        self.loaded = load_model(resolve_model(config.model), device=config.device)
        self.model = self.loaded.model
        self.tokenizer = self.loaded.tokenizer
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.prompt_format = resolve_prompt_format(config.prompt_format, self.tokenizer)
        self.train_data = read_instances(train_file)
        validation = read_instances(validation_file)
        self.val_data = validation[: config.val_instances] if config.val_instances else validation
        if len(self.val_data) < config.turns * config.edits_per_turn:
            raise ValueError(
                f"{validation_file} has {len(self.val_data)} usable instances; one validation "
                f"sequence needs turns x edits_per_turn = {config.turns * config.edits_per_turn}."
            )
        self.locality = LocalityPool(config.locality, self.train_data)
        self.val_locality = LocalityPool(config.locality, validation)
        parameters = dict(self.model.named_parameters())
        self.targets = target_weights(self.model, config.layers, config.weights)
        shapes = {name: tuple(parameters[name].shape) for name in self.targets}
        torch.manual_seed(config.seed)
        self.hypernet = HyperNetwork(shapes, config.rank, config.n_hidden, config.shared, config.edit_lr).to(
            config.device
        )
        self.optimizer = torch.optim.Adam(
            [
                {"params": self.hypernet.transform_parameters(), "lr": config.lr},
                {"params": [self.hypernet.step_sizes], "lr": config.lr_alpha},
            ]
        )
        self.step = 0
        self.best_loss = math.inf
        self.best_step = 0

    # ----- one sequence of edits -------------------------------------------------------------

    def _batches(self, turn: list[Instance], locality: list) -> tuple[TokenBatch, TokenBatch, TokenBatch]:
        config, tok = self.config, self.tokenizer
        inner = inner_batch(tok, [i.edit for i in turn], config.inner_loss, config.max_length)
        if config.outer_loss == "propagation":
            qas = [qa for i in turn for qa in i.propagation]
            outer = question_batch(
                tok, self.prompt_format, [q.question for q in qas], [q.answer for q in qas], config.max_length
            )
        else:
            qas = [qa for i in turn for qa in i.paraphrases]
            if not qas:
                raise ValueError(f"Outer loss 'paraphrase' needs atomic facts; instance {turn[0].edit.id} has none.")
            outer = pair_batch(
                tok, [q.question for q in qas], [" " + q.answer for q in qas], max_length=config.max_length
            )
        loc = question_batch(
            tok, self.prompt_format, [q.question for q in locality], [q.answer for q in locality], config.max_length
        )
        return inner, outer, loc

    def _logits(self, batch: TokenBatch, weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        inputs = batch.model_inputs(self.config.device)
        if weights is None:
            return self.model(**inputs).logits
        return functional_call(self.model, weights, args=(), kwargs=inputs).logits

    def run_sequence(
        self, turns: list[list[Instance]], localities: list[list], backward: bool, scale: float = 1.0
    ) -> dict[str, float]:
        """Edit turn by turn, accumulating gradients into phi when `backward`; weights are restored."""
        config = self.config
        parameters = dict(self.model.named_parameters())
        saved = {name: parameters[name].detach().clone() for name in self.targets}
        history: list[tuple[TokenBatch, TokenBatch]] = []
        totals = {"loss": 0.0, "edit": 0.0, "loc": 0.0, "inner": 0.0}
        try:
            for turn, locality in zip(turns, localities):
                inner, outer, loc = self._batches(turn, locality)
                factors, inner_value = rank1_factors(
                    self.model, self.targets, lambda: token_nll(self._logits(inner), inner.labels.to(config.device))
                )
                with torch.set_grad_enabled(backward):
                    updates = self.hypernet.updates(factors)
                    edited = {name: parameters[name] + updates[name] for name in self.targets}
                    history.append((outer, loc))
                    loss = config.reg_coef * sum(update.pow(2).sum() for update in updates.values())
                    for depth, (past_outer, past_loc) in enumerate(reversed(history[-config.back_depth :])):
                        edit_loss = token_nll(self._logits(past_outer, edited), past_outer.labels.to(config.device))
                        with torch.no_grad():
                            base = self._logits(past_loc)
                        loc_loss = locality_kl(base, self._logits(past_loc, edited), past_loc.labels.to(config.device))
                        loss = loss + config.decay**depth * (config.c_edit * edit_loss + loc_loss)
                        if depth == 0:
                            totals["edit"] += edit_loss.item() / len(turns)
                            totals["loc"] += loc_loss.item() / len(turns)
                    if backward:
                        (loss * scale).backward()
                totals["loss"] += float(loss.detach()) / len(turns)
                totals["inner"] += inner_value.item() / len(turns)
                with torch.no_grad():
                    for name in self.targets:
                        parameters[name].add_(updates[name].detach())
        finally:
            with torch.no_grad():
                for name in self.targets:
                    parameters[name].copy_(saved[name])
        return totals

    def sample_sequence(self, rng: random.Random, data: list[Instance], pool: LocalityPool) -> tuple[list, list]:
        """Instances for `turns` x `edits_per_turn` edits, and locality questions per turn."""
        config = self.config
        count = config.turns * config.edits_per_turn
        indices = (
            rng.sample(range(len(data)), count)
            if count <= len(data)
            else [rng.randrange(len(data)) for _ in range(count)]
        )
        turns = [
            [data[i] for i in indices[t * config.edits_per_turn : (t + 1) * config.edits_per_turn]]
            for t in range(config.turns)
        ]
        localities = [pool.sample(rng, config.locality_batch, set(indices)) for _ in range(config.turns)]
        return turns, localities

    # ----- training, validation, checkpoints --------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """One optimizer step over `batch_size` sequences; sampling is seeded by the step number."""
        config = self.config
        rng = random.Random(f"{config.seed}-train-{self.step}")
        self.hypernet.train()
        totals: dict[str, float] = {}
        for _ in range(config.batch_size):
            turns, localities = self.sample_sequence(rng, self.train_data, self.locality)
            for key, value in self.run_sequence(turns, localities, backward=True, scale=1 / config.batch_size).items():
                totals[key] = totals.get(key, 0.0) + value / config.batch_size
        grad_norm = torch.nn.utils.clip_grad_norm_(self.hypernet.parameters(), config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return {**totals, "grad_norm": float(grad_norm)}

    def validation_sequences(self) -> list[tuple[list, list]]:
        """Fixed validation sequences: the validation instances in order, in groups of one sequence."""
        config = self.config
        size = config.turns * config.edits_per_turn
        rng = random.Random(f"{config.seed}-validation")
        sequences = []
        for start in range(0, len(self.val_data) - size + 1, size):
            group = self.val_data[start : start + size]
            turns = [group[t * config.edits_per_turn : (t + 1) * config.edits_per_turn] for t in range(config.turns)]
            exclude = set(range(start, start + size))
            sequences.append((turns, [self.val_locality.sample(rng, config.locality_batch, exclude) for _ in turns]))
        return sequences

    def validate(self) -> dict[str, float]:
        """Mean outer loss on the validation sequences, and EM efficacy/specificity if configured."""
        self.hypernet.eval()
        sequences = self.validation_sequences()
        totals: dict[str, float] = {}
        for turns, localities in sequences:
            for key, value in self.run_sequence(turns, localities, backward=False).items():
                totals[f"val_{key}"] = totals.get(f"val_{key}", 0.0) + value / len(sequences)
        if self.config.val_generate:
            totals.update(self.exact_match([sum(turns, []) for turns, _ in sequences]))
        return totals

    def exact_match(self, groups: list[list[Instance]]) -> dict[str, float]:
        """EM efficacy (alias questions) and specificity (unalias questions) after editing each group."""
        trained = TrainedHypernet(self.hypernet, self.config.inner_loss, self.config.layers, self.model_identity())
        editor = HypernetEditor(
            HypernetConfig(edits_per_turn=self.config.edits_per_turn, max_length=self.config.max_length), trained
        )
        assert self.scorer is not None  # checked in __init__ when val_generate is set
        return self.scorer(self.loaded, self.prompt_format, editor, groups)

    def model_identity(self) -> dict[str, Any]:
        return {"name": self.config.model, "fingerprint": fingerprint(self.model.config)}

    def payload(self, optimizer: bool = True) -> dict[str, Any]:
        """Checkpoint contents; the optimizer state (twice the hypernetwork's size) only for resuming."""
        parameters = dict(self.model.named_parameters())
        return {
            "train_config": dataclasses.asdict(self.config),
            "model": self.model_identity(),
            "targets": [[name, list(parameters[name].shape)] for name in self.targets],
            "hypernet": self.hypernet.state_dict(),
            "optimizer": self.optimizer.state_dict() if optimizer else None,
            "step": self.step,
            "best_loss": self.best_loss,
            "best_step": self.best_step,
        }

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint of the same config (only the budget and out_dir may differ)."""
        payload = read_checkpoint(path)
        saved = dict(payload["train_config"])
        current = dataclasses.asdict(self.config)
        differing = sorted(
            k
            for k in current
            if k not in ("max_steps", "max_minutes", "patience", "out_dir") and saved.get(k) != current[k]
        )
        if differing:
            raise ValueError(
                f"Cannot resume from {path}: its config differs in {', '.join(differing)}. "
                "Use another out_dir, or pass --no-resume to start over."
            )
        self.hypernet.load_state_dict(payload["hypernet"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.step, self.best_loss, self.best_step = payload["step"], payload["best_loss"], payload["best_step"]

    def log(self, record: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with (self.out_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def validate_and_save(self) -> dict[str, float]:
        metrics = self.validate()
        if metrics["val_loss"] < self.best_loss:
            self.best_loss, self.best_step = metrics["val_loss"], self.step
            save_checkpoint(self.out_dir / "best.pt", self.payload(optimizer=False))
        save_checkpoint(self.out_dir / "last.pt", self.payload())
        self.log({"step": self.step, "kind": "validation", **metrics, "best_step": self.best_step})
        return metrics

    def train(self, resume: bool = True, progress: bool = True) -> Path:
        """Train until max_steps, the time budget, or early stopping; return the best checkpoint."""
        config = self.config
        last = self.out_dir / "last.pt"
        if resume and last.is_file():
            self.resume(last)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
        started, cpu_started = time.monotonic(), time.process_time()
        bar = tqdm(total=config.max_steps, initial=self.step, desc="meta-training", unit="step", disable=not progress)
        interrupted = True
        try:
            while self.step < config.max_steps:
                if config.max_minutes and time.monotonic() - started > 60 * config.max_minutes:
                    break
                if self.step - self.best_step >= config.patience:
                    break
                record = self.train_step()
                elapsed = {"seconds": time.monotonic() - started, "cpu_seconds": time.process_time() - cpu_started}
                self.log({"step": self.step, "kind": "train", **record, **{k: round(v, 1) for k, v in elapsed.items()}})
                bar.update(1)
                bar.set_postfix(loss=f"{record['loss']:.3f}", edit=f"{record['edit']:.3f}", loc=f"{record['loc']:.4f}")
                if self.step % config.val_every == 0:
                    self.validate_and_save()
            interrupted = False
        finally:
            bar.close()
            if interrupted:  # keep every finished step; `train` resumes from here
                save_checkpoint(self.out_dir / "last.pt", self.payload())
        if self.step % config.val_every != 0:
            self.validate_and_save()
        return self.out_dir / "best.pt"
