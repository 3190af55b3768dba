//! Synthetic clusters for tests and benchmarks: deterministic for a seed, with the skew real
//! clusters have (a few heavy topics, brokers added later and still empty-ish).

use super::{Broker, Capacity, ClusterModel, Load, LogDir, Partition, Replica, MODEL_VERSION};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Brokers.
    pub brokers: u32,
    /// Racks the brokers are spread over (0: none set).
    pub racks: u32,
    /// Topics the partitions are spread over.
    pub topics: u32,
    /// Partitions, all topics together.
    pub partitions: u32,
    /// Replicas per partition.
    pub replication: u32,
    /// Log directories per broker.
    pub log_dirs: u16,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            brokers: 6,
            racks: 3,
            topics: 10,
            partitions: 300,
            replication: 3,
            log_dirs: 2,
            seed: 1,
        }
    }
}

/// SplitMix64: small, fast and good enough for test data, so no `rand` dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Generates a cluster. Replicas are placed with a bias towards the lower-numbered brokers
/// (the last third of the brokers gets few), rack-aware where possible, and partition loads
/// follow a heavy tail: a few topics carry most of the bytes.
pub fn generate(spec: Spec) -> ClusterModel {
    let mut rng = Rng::new(spec.seed);
    let brokers: Vec<Broker> = (0..spec.brokers)
        .map(|i| Broker {
            id: i as i32 + 1,
            rack: (spec.racks > 0).then(|| format!("rack-{}", i % spec.racks)),
            capacity: Capacity {
                disk_bytes: Some(4e12),
                network_in: Some(250e6),
                network_out: Some(500e6),
                cpu_cores: Some(8.0),
            },
            log_dirs: (0..spec.log_dirs.max(1))
                .map(|d| LogDir {
                    path: format!("/data/disk{d}"),
                    capacity_bytes: Some(4e12 / f64::from(spec.log_dirs.max(1))),
                })
                .collect(),
            excluded: false,
            added: false,
        })
        .collect();
    let topics: Vec<String> = (0..spec.topics.max(1))
        .map(|t| format!("topic-{t:05}"))
        .collect();
    // Topic weights: Zipf-like, topic t carries 1/(t+1) of a share.
    let weights: Vec<f64> = (0..topics.len()).map(|t| 1.0 / (t as f64 + 1.0)).collect();
    let replication = spec.replication.clamp(1, spec.brokers.max(1));
    // Placement favours the first two thirds of the brokers, as after a cluster expansion.
    let favoured = u64::from((spec.brokers * 2 / 3).max(replication));
    let mut partitions = Vec::with_capacity(spec.partitions as usize);
    let mut per_topic = vec![0i32; topics.len()];
    for i in 0..spec.partitions {
        let topic = (u64::from(i) * 7 + rng.below(3)) % topics.len() as u64;
        let index = per_topic[topic as usize];
        per_topic[topic as usize] += 1;
        let mut replicas: Vec<Replica> = Vec::with_capacity(replication as usize);
        let pool = if rng.below(10) < 8 {
            favoured
        } else {
            u64::from(spec.brokers)
        };
        while replicas.len() < replication as usize {
            let b = rng.below(pool) as u32;
            let rack_taken = spec.racks > 0
                && replicas.len() < spec.racks as usize
                && replicas
                    .iter()
                    .any(|r| r.broker % spec.racks == b % spec.racks);
            if replicas.iter().any(|r| r.broker == b) || (rack_taken && rng.below(10) < 9) {
                continue;
            }
            replicas.push(Replica {
                broker: b,
                log_dir: rng.below(u64::from(spec.log_dirs.max(1))) as u16,
            });
        }
        let weight = weights[topic as usize] * (0.5 + rng.unit());
        let bytes_in = 2e6 * weight;
        // One partition in ten is led by another replica than its preferred one.
        let leader = if rng.below(10) == 0 {
            replicas[rng.below(replicas.len() as u64) as usize].broker
        } else {
            replicas[0].broker
        };
        partitions.push(Partition {
            topic: topic as u32,
            index,
            leader: Some(leader),
            replicas,
            load: Load {
                disk_bytes: bytes_in * 3_600.0 * (1.0 + 10.0 * rng.unit()),
                bytes_in,
                bytes_out: bytes_in * (1.0 + rng.below(3) as f64),
                ..Load::default()
            },
        });
    }
    // Scale the loads so the cluster is 40 % full on disk, 30 % busy on the network and 35 %
    // on CPU.
    let replicas = f64::from(replication);
    let total = |f: fn(&Load) -> f64| partitions.iter().map(|p| f(&p.load)).sum::<f64>();
    let brokers_f = f64::from(spec.brokers.max(1));
    let disk_scale = 0.4 * 4e12 * brokers_f / (total(|l| l.disk_bytes) * replicas).max(1.0);
    let net_scale = 0.3 * 250e6 * brokers_f / (total(|l| l.bytes_in) * replicas).max(1.0);
    for p in &mut partitions {
        p.load.disk_bytes *= disk_scale;
        p.load.bytes_in *= net_scale;
        p.load.bytes_out *= net_scale;
    }
    partitions.sort_by_key(|p| (p.topic, p.index));
    let mut model = ClusterModel {
        version: MODEL_VERSION,
        brokers,
        topics,
        partitions,
    };
    super::cpu::assign_total(&mut model, 0.35 * 8.0 * brokers_f);
    model
}
