#!/bin/bash
# Model-size comparison at rung 2 on equal data (expert + all 7 DAgger stores), from scratch.
cd /work/main
export OMP_NUM_THREADS=1
EXTRA='["runs/dagger_dd/round_0/data","runs/dagger_dd/round_1/data","runs/dagger_dd/round_2/data","runs/dagger_dd/round_3/data","runs/dagger_dd2/round_0/data","runs/dagger_dd2/round_1/data","runs/dagger_dd2/round_2/data"]'
MED='model.backbone_overrides={"text_dim":128,"text_head_dim":32,"text_ffn":512,"vision_dim":128,"vision_ffn":512,"text_layers":3,"vision_layers":3}'
common="data.path=data/calvin_d_noise data.extra_paths=$EXTRA train.batch_size=16 train.max_steps=6000 train.max_minutes=80 optim.warmup_steps=200 data.num_workers=1"
echo "tiny start $(date)"
python -m trainer.train --config trainer/configs/paligemma_ph_lstm_state.json $common train.out=runs/size/tiny > runs/size/tiny.log 2>&1
echo "tiny done $(date)"
python -m bench.run --policy vla:runs/size/tiny/latest --scene D --chains 100 --workers 2 --seed 0 --out runs/size/eval_tiny_D --quiet > runs/size/eval_tiny.log 2>&1
echo "tiny eval done $(date)"
python -m trainer.train --config trainer/configs/paligemma_ph_lstm_state.json $common "$MED" train.out=runs/size/med > runs/size/med.log 2>&1
echo "med done $(date)"
python -m bench.run --policy vla:runs/size/med/latest --scene D --chains 100 --workers 2 --seed 0 --out runs/size/eval_med_D --quiet > runs/size/eval_med.log 2>&1
echo "med eval done $(date)"
