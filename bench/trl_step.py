"""PyTorch + PEFT side of bench/trl.ts: LoRA SFT steps on a model dir, same batch and threads; prints JSON."""

import json
import resource
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

req = json.loads(sys.argv[1])
torch.set_num_threads(req["threads"])
# denormal floats are slow on x86 CPUs; --flush-denormal flushes them to zero, to see whether they slow a step
torch.set_flush_denormal(req["flushDenormal"])
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(req["model"], dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=req["rank"], lora_alpha=2 * req["rank"], lora_dropout=0.0, target_modules=req["targets"], task_type="CAUSAL_LM"))
model.train()
ids = torch.tensor(req["ids"])
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(trainable, lr=1e-4)


def step():
    loss = model(input_ids=ids, labels=ids).loss  # mean over the B x (T-1) shifted targets
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


times = []
cpu = []
first_loss = loss = 0.0
for n in range(req["steps"] + 1):
    start, cpu_start = time.perf_counter(), time.process_time()
    loss = step()
    if n == 0:  # the first step warms up allocators and kernels
        first_loss = loss
    else:
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
if req.get("profile"):
    # PyTorch's own time per op for one more step, to set beside the engine's (bench/train.ts --profile)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    print("torch.profiler, one step, self CPU time per op:", file=sys.stderr)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20), file=sys.stderr)
base = model.base_model.model
checkpointing = getattr(base, "is_activation_checkpointing", None)  # transformers >= 5 (is_gradient_checkpointing before)
if checkpointing is None:
    checkpointing = base.is_gradient_checkpointing
dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
facts = (
    f"{'/'.join(dtypes)}, {sum(p.numel() for p in trainable)} trainable, torch threads {torch.get_num_threads()}, "
    f"attention {model.config._attn_implementation}, gradient checkpointing {'on' if checkpointing else 'off'}"
)
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "cpuSeconds": sorted(cpu)[len(cpu) // 2], "loss": loss, "firstLoss": first_loss, "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "facts": facts}))
