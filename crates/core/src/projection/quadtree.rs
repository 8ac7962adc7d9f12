//! The Barnes-Hut quadtree of a 2-D layout: t-SNE's repulsive forces in O(n log n).

/// A point-region quadtree over the current layout, rebuilt every iteration
/// (its buffers are reused).
#[derive(Debug, Clone, Default)]
pub(super) struct QuadTree {
    nodes: Vec<Node>,
    /// Point indices, grouped so every node owns a contiguous range.
    order: Vec<u32>,
    scratch: Vec<u32>,
    stack: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    centre: [f64; 2],
    /// Half the side of the (square) cell.
    half: f64,
    centre_of_mass: [f64; 2],
    count: u32,
    /// Range of `QuadTree::order` holding this node's points.
    start: u32,
    end: u32,
    /// Index of the first of four consecutive children; 0 for a leaf (the
    /// root, node 0, is never a child).
    first_child: u32,
}

impl QuadTree {
    pub(super) fn build(&mut self, y: &[[f64; 2]]) {
        let n = y.len();
        self.order.clear();
        self.order.extend(0..n as u32);
        self.scratch.resize(n, 0);
        self.nodes.clear();
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for p in y {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let half = 0.5 * (hi[0] - lo[0]).max(hi[1] - lo[1]);
        let min_half = half * 1e-12;
        self.nodes.push(Node {
            centre: [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])],
            // Slightly enlarged so points on the upper edges fall inside.
            half: half * (1.0 + 1e-9) + f64::MIN_POSITIVE,
            centre_of_mass: [0.0; 2],
            count: 0,
            start: 0,
            end: n as u32,
            first_child: 0,
        });
        // Breadth-first: nodes are summarised (and maybe split) in the order
        // they were created.
        let mut next = 0;
        while next < self.nodes.len() {
            let node = self.nodes[next];
            let points = &self.order[node.start as usize..node.end as usize];
            let (mut sum, mut lo, mut hi) =
                ([0.0f64; 2], [f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for &j in points {
                let p = y[j as usize];
                for k in 0..2 {
                    sum[k] += p[k];
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
            let count = points.len();
            let all_same = lo == hi;
            {
                let node = &mut self.nodes[next];
                node.count = count as u32;
                if count > 0 {
                    node.centre_of_mass = [sum[0] / count as f64, sum[1] / count as f64];
                }
            }
            if count > 1 && !all_same && node.half > min_half {
                self.split(next, y);
            }
            next += 1;
        }
    }

    /// Distributes the points of node `index` over four new children.
    pub(super) fn split(&mut self, index: usize, y: &[[f64; 2]]) {
        let node = self.nodes[index];
        let (start, end) = (node.start as usize, node.end as usize);
        let quadrant = |j: u32| {
            let p = y[j as usize];
            usize::from(p[0] >= node.centre[0]) | (usize::from(p[1] >= node.centre[1]) << 1)
        };
        let mut counts = [0usize; 4];
        for &j in &self.order[start..end] {
            counts[quadrant(j)] += 1;
        }
        let mut offsets = [start; 4];
        for q in 1..4 {
            offsets[q] = offsets[q - 1] + counts[q - 1];
        }
        let bounds = offsets;
        for &j in &self.order[start..end] {
            let q = quadrant(j);
            self.scratch[offsets[q]] = j;
            offsets[q] += 1;
        }
        self.order[start..end].copy_from_slice(&self.scratch[start..end]);
        let first_child = self.nodes.len();
        self.nodes[index].first_child = first_child as u32;
        let half = 0.5 * node.half;
        for q in 0..4 {
            let dx = if q & 1 == 1 { half } else { -half };
            let dy = if q & 2 == 2 { half } else { -half };
            self.nodes.push(Node {
                centre: [node.centre[0] + dx, node.centre[1] + dy],
                half,
                centre_of_mass: [0.0; 2],
                count: 0,
                start: bounds[q] as u32,
                end: (bounds[q] + counts[q]) as u32,
                first_child: 0,
            });
        }
    }

    /// Adds to `force` the unnormalised repulsion `Σ_j q_ij² (y_i - y_j)` on
    /// point `i` (with `q_ij = 1 / (1 + |y_i - y_j|²)`) and returns its share
    /// `Σ_j q_ij` of the normalisation `Z`, using the centre of mass of every
    /// cell with `width / distance < theta`.
    pub(super) fn repulsion(
        &mut self,
        y: &[[f64; 2]],
        i: usize,
        theta: f64,
        force: &mut [f64; 2],
    ) -> f64 {
        let yi = y[i];
        let mut z = 0.0;
        self.stack.clear();
        self.stack.push(0);
        while let Some(index) = self.stack.pop() {
            let node = self.nodes[index as usize];
            if node.count == 0 {
                continue;
            }
            if node.first_child == 0 {
                for &j in &self.order[node.start as usize..node.end as usize] {
                    if j as usize != i {
                        let yj = y[j as usize];
                        let d = [yi[0] - yj[0], yi[1] - yj[1]];
                        let q = 1.0 / (1.0 + d[0] * d[0] + d[1] * d[1]);
                        z += q;
                        force[0] += q * q * d[0];
                        force[1] += q * q * d[1];
                    }
                }
                continue;
            }
            let d = [
                yi[0] - node.centre_of_mass[0],
                yi[1] - node.centre_of_mass[1],
            ];
            let dist2 = d[0] * d[0] + d[1] * d[1];
            let width = 2.0 * node.half;
            if width * width < theta * theta * dist2 {
                let q = 1.0 / (1.0 + dist2);
                let mass = f64::from(node.count) * q;
                z += mass;
                force[0] += mass * q * d[0];
                force[1] += mass * q * d[1];
            } else {
                self.stack.extend(node.first_child..node.first_child + 4);
            }
        }
        z
    }
}
