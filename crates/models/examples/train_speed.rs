use burn::tensor::Device;
use landscape_models::cpu::CpuTrainer;
use landscape_models::{Network, NetworkSpec};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = args.get(1).map(|s| s.as_str()).unwrap_or("resnet20");
    let width: f64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(1.0);
    let batch: usize = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(128);
    let steps: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(10);
    let net = Network::new(NetworkSpec {
        arch: model.parse().unwrap(),
        width,
        classes: 10,
    })
    .unwrap();
    let trainer = CpuTrainer::new(net.layers(), net.layout(), [3, 32, 32]).unwrap();
    let mut params = net.init(0, &Device::flex()).to_host();
    let mut grads: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
    let mut ws = trainer.workspace();
    let mut state = 1u64;
    let images: Vec<f32> = (0..batch * 3072)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect();
    let labels: Vec<u16> = (0..batch).map(|i| (i % 10) as u16).collect();
    trainer.load(&mut ws, &params);
    trainer.accumulate(
        &mut ws,
        &mut params,
        &images,
        &labels,
        1.0 / batch as f32,
        &mut grads,
    );
    let mut times = Vec::new();
    for _ in 0..steps {
        let t = Instant::now();
        trainer.load(&mut ws, &params);
        if std::env::var("TPROF").is_ok() {
            eprintln!("pack {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        }
        trainer.accumulate(
            &mut ws,
            &mut params,
            &images,
            &labels,
            1.0 / batch as f32,
            &mut grads,
        );
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    println!(
        "{model} x{width} batch {batch}: {:.1} ms/step (min {:.1}), {:.0} images/s",
        med * 1e3,
        times[0] * 1e3,
        batch as f64 / med
    );
}
