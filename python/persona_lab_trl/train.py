"""
Trains one persona-lab job with TRL + PEFT: `accelerate launch -m persona_lab_trl.train job.json`.

job.json (written by persona-lab's trl backend, or by `--emit` for a cluster) names the objective,
the base model, the dataset (persona-lab's JSONL rows, already in TRL's shapes), the LoRA config, the
TRL config (persona-lab's options mapped onto TRL's names) and where to write. Every optimizer step
appends one line to the cell's train.jsonl in the engine's StepLog schema; TRL checkpoints every
save_steps, and a rerun after a kill resumes from the latest; the finished adapter goes to
adapter_dir and done.json marks the job finished. GRPO's reward comes from persona-lab's reward
server on 127.0.0.1 (reward_url), so the reward logic lives in one place.
"""

import json
import os
import re
import sys
import time
import urllib.request
from pathlib import Path


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json_atomic(path, value):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prompt_messages(prompt):
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def reply_messages(reply):
    return [{"role": "assistant", "content": reply}] if isinstance(reply, str) else reply


def tokenize_chat(tokenizer, messages, max_length):
    """Input ids and a mask of assistant tokens, found by rendering prefixes (as the engine does)."""
    render = lambda ms, gen=False: tokenizer.apply_chat_template(ms, tokenize=False, add_generation_prompt=gen)
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = encode(render(messages))
    mask = [0] * len(ids)
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = encode(render(messages[:i], True))
        through = encode(render(messages[: i + 1]))
        if through[: len(before)] != before or ids[: len(through)] != through:
            raise ValueError(f"chat template: turns 0..{i} do not render as a prefix; cannot mask assistant tokens")
        mask[len(before) : len(through)] = [1] * (len(through) - len(before))
    return {"input_ids": ids[:max_length], "assistant_masks": mask[:max_length]}


def tokenize_text(tokenizer, text, max_length):
    ids = tokenizer(text, add_special_tokens=True)["input_ids"] + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])
    return [{"input_ids": ids[s : s + max_length], "assistant_masks": [1] * len(ids[s : s + max_length])} for s in range(0, len(ids), max_length) if len(ids) - s > 1]


class StepLogWriter:
    """Appends one StepLog line per optimizer step to train.jsonl (one write per line, O_APPEND), skipping logged steps."""

    def __init__(self, path):
        self.path = path
        self.logged = set()
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        self.logged.add(json.loads(line)["key"])
                    except (ValueError, KeyError):
                        pass
        self.last_time = time.monotonic()
        self.last_tokens = 0

    def start(self, state):
        """At the start or a resume: step times and token counts run from here."""
        self.last_time = time.monotonic()
        self.last_tokens = int(state.num_input_tokens_seen or 0)

    def write(self, state, logs):
        if "loss" not in logs or state.global_step < 1:
            return
        now = time.monotonic()
        seconds = now - self.last_time
        tokens = int(state.num_input_tokens_seen or 0)
        step_tokens = max(tokens - self.last_tokens, 0)
        self.last_time, self.last_tokens = now, tokens
        key = f"step-{state.global_step}"
        if key in self.logged:
            return
        value = {
            "step": state.global_step,
            "epoch": int(logs.get("epoch", state.epoch or 0)),
            "loss": float(logs["loss"]),
            "lr": float(logs.get("learning_rate", 0.0)),
            "gradNorm": float(logs.get("grad_norm", 0.0)),
            "tokens": step_tokens,
            "tokensPerSecond": step_tokens / seconds if seconds > 0 else 0.0,
            "seconds": seconds,
        }
        for k, v in logs.items():
            if k not in ("loss", "learning_rate", "grad_norm", "epoch") and isinstance(v, (int, float)):
                value[re.sub(r"[^A-Za-z0-9]+(.)", lambda m: m.group(1).upper(), k)] = float(v)
        line = json.dumps({"key": key, "value": value}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        self.logged.add(key)


def latest_checkpoint(output_dir):
    steps = [int(m.group(1)) for p in Path(output_dir).glob("checkpoint-*") if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / "trainer_state.json").exists()]
    return str(Path(output_dir) / f"checkpoint-{max(steps)}") if steps else None


def reward_function(url):
    """A TRL reward function asking persona-lab's reward server to score a batch of completions."""

    def text_of(x):
        return x if isinstance(x, str) else "\n".join(m["content"] for m in x if m["role"] != "system")

    def persona_lab_reward(prompts, completions, **_):
        # Conversations go as messages: persona-lab's judges show earlier turns with their speakers.
        body = json.dumps({"prompts": [p if isinstance(p, str) else [m for m in p if m["role"] != "system"] for p in prompts], "completions": [text_of(c) for c in completions]}).encode()
        request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())["rewards"]

    return persona_lab_reward


def main(job_file):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    job_dir = Path(job_file).resolve().parent
    job = json.loads(Path(job_file).read_text(encoding="utf-8"))
    at = lambda p: str((job_dir / p).resolve())
    objective = job["objective"]
    tokenizer = AutoTokenizer.from_pretrained(job["model"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(job["model"], dtype=getattr(torch, job.get("dtype", "float32")))
    rows = read_jsonl(at(job["dataset"]))
    max_length = job["max_length"]
    common = {"output_dir": at(job["output_dir"]), "seed": job["seed"], "logging_steps": 1, "save_strategy": "steps", "report_to": "none", "include_num_input_tokens_seen": True, "use_cpu": job.get("device") == "cpu", **job["trl"]}
    lora = LoraConfig(task_type="CAUSAL_LM", **job["lora"]) if job.get("lora") else None

    if objective == "sft":
        from trl import SFTConfig, SFTTrainer

        data = [s for r in rows for s in ([tokenize_chat(tokenizer, r["messages"], max_length)] if "messages" in r else tokenize_text(tokenizer, r["text"], max_length))]
        config = SFTConfig(max_length=max_length, **common)
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(data), processing_class=tokenizer, peft_config=lora)
    elif objective == "dpo":
        from trl import DPOConfig, DPOTrainer

        data = [{"prompt": prompt_messages(r["prompt"]), "chosen": reply_messages(r["chosen"]), "rejected": reply_messages(r["rejected"])} for r in rows]
        config = DPOConfig(max_length=max_length, **common)
        trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(data), processing_class=tokenizer, peft_config=lora)
    elif objective == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        data = [{"prompt": prompt_messages(r["prompt"])} for r in rows]
        config = GRPOConfig(**common)
        trainer = GRPOTrainer(model=model, reward_funcs=reward_function(job["reward_url"]), args=config, train_dataset=Dataset.from_list(data), processing_class=tokenizer, peft_config=lora)
    else:
        raise SystemExit(f"job.json: objective: expected sft, dpo or grpo (found {objective!r})")

    log = StepLogWriter(at(job["log"]))

    class StepLines(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            log.start(state)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                log.write(state, logs)

    trainer.add_callback(StepLines())
    result = trainer.train(resume_from_checkpoint=latest_checkpoint(common["output_dir"]))
    if trainer.accelerator.is_main_process:
        if lora and job.get("base_model"):
            # PEFT names the base by the path it was loaded from; job.json names it as persona-lab's own
            # adapters do (a Hub cache snapshot: its Hub id, pinned to the commit as PEFT's revision)
            for config in trainer.model.peft_config.values():
                config.base_model_name_or_path = job["base_model"]["name_or_path"]
                config.revision = job["base_model"]["revision"]
        trainer.model.save_pretrained(at(job["adapter_dir"]))
        write_json_atomic(at(job["done"]), {"steps": trainer.state.global_step, "trainLoss": result.training_loss, "seconds": result.metrics.get("train_runtime")})


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: accelerate launch -m persona_lab_trl.train <job.json>")
    main(sys.argv[1])
    # The job's results are on disk (adapter, done.json, checkpoints). Tearing the interpreter down with
    # torch, transformers and TRL loaded takes seconds and saves nothing, so a job that left no helper
    # processes (vLLM engines, data-loader workers: their shutdown runs at exit) ends here.
    import psutil

    if not psutil.Process().children():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
