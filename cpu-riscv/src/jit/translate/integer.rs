//! Integer, branch and jump instructions in translated code, and the dispatch
//! of each instruction to its emitter.

use super::*;

impl Emitter<'_, '_> {
    /// Signed division with RISC-V's results for zero and overflow.
    fn div(&mut self, a: Value, b: Value, ty: Type, signed: bool, rem: bool) -> Value {
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let one = self.b.ins().iconst(ty, 1);
        let mut divisor = self.b.ins().select(zero, one, b);
        if signed {
            let min = if ty == types::I32 {
                i64::from(i32::MIN)
            } else {
                i64::MIN
            };
            let a_min = self.b.ins().icmp_imm_s(IntCC::Equal, a, min);
            let b_neg = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
            let overflow = self.b.ins().band(a_min, b_neg);
            let one = self.b.ins().iconst(ty, 1);
            divisor = self.b.ins().select(overflow, one, divisor);
            // MIN / -1 = MIN (= MIN / 1) and MIN % -1 = 0 (= MIN % 1).
        }
        let result = match (signed, rem) {
            (true, false) => self.b.ins().sdiv(a, divisor),
            (false, false) => self.b.ins().udiv(a, divisor),
            (true, true) => self.b.ins().srem(a, divisor),
            (false, true) => self.b.ins().urem(a, divisor),
        };
        let on_zero = if rem { a } else { self.b.ins().iconst(ty, -1) };
        self.b.ins().select(zero, on_zero, result)
    }

    /// The rotate that or/add/xor `insn` computes from two complementary shifts
    /// of one value, if it is one.
    fn rotate(&mut self, insn: &Insn) -> Option<Value> {
        let (a, b) = (
            self.shifts[usize::from(insn.rs1)]?,
            self.shifts[usize::from(insn.rs2)]?,
        );
        let (left, right) = if a.left { (a, b) } else { (b, a) };
        if left.source != right.source
            || !left.left
            || right.left
            || left.width != right.width
            || left.amount == 0
            || left.amount + right.amount != left.width
        {
            return None;
        }
        let amount = i64::from(left.amount);
        Some(if left.width == 32 {
            // The right shift's bit 31 is clear, so the 64-bit or/add/xor of the
            // two sign-extended words is the sign-extended rotated word, as addw.
            let w = self.b.ins().ireduce(types::I32, left.source);
            let r = self.b.ins().rotl_imm_s(w, amount);
            self.b.ins().sextend(types::I64, r)
        } else {
            // The 64-bit ops only: addw of two 64-bit shifts is something else.
            if insn.op == Op::Addw {
                return None;
            }
            self.b.ins().rotl_imm_s(left.source, amount)
        })
    }

    fn word_op(&mut self, insn: &Insn, f: impl Fn(&mut FunctionBuilder, Value, Value) -> Value) {
        let a = self.reg(insn.rs1);
        let b = self.reg(insn.rs2);
        let a = self.b.ins().ireduce(types::I32, a);
        let b = self.b.ins().ireduce(types::I32, b);
        let r = f(self.b, a, b);
        let r = self.b.ins().sextend(types::I64, r);
        self.set(insn.rd, r);
    }

    /// Emits one instruction; returns false when it ended the block.
    pub(super) fn insn(&mut self, insn: &Insn, pc: u64, index: u64) -> bool {
        use Op::*;
        self.at_pc = pc;
        if matches!(insn.op, Add | Addw | Or | Xor)
            && let Some(v) = self.rotate(insn)
        {
            self.set(insn.rd, v);
            return true;
        }
        let next = pc.wrapping_add(u64::from(insn.len));
        let rd = insn.rd;
        match kind(insn.op) {
            Some(Kind::Helper) => {
                if !self.fp_inline(insn, pc, index) {
                    self.helper(insn, pc, index, false);
                }
                return true;
            }
            Some(Kind::EndsBlock)
                if !matches!(insn.op, Jal | Jalr | Beq | Bne | Blt | Bge | Bltu | Bgeu) =>
            {
                self.helper(insn, pc, index, true);
                return false;
            }
            _ => {}
        }
        match insn.op {
            Lui => {
                let v = self.imm(insn);
                self.set(rd, v);
            }
            Auipc => {
                let v = self.b.ins().iconst(
                    types::I64,
                    pc.wrapping_add(i64::from(insn.imm) as u64) as i64,
                );
                self.set(rd, v);
            }
            Jal => {
                let link = self.b.ins().iconst(types::I64, next as i64);
                self.set(rd, link);
                self.exit_to(pc.wrapping_add(i64::from(insn.imm) as u64), index + 1);
                return false;
            }
            Jalr => {
                let base = self.reg(insn.rs1);
                let sum = self.b.ins().iadd_imm_s(base, i64::from(insn.imm));
                let target = self.b.ins().band_imm_s(sum, !1);
                let link = self.b.ins().iconst(types::I64, next as i64);
                self.set(rd, link);
                // A return from a function the region called: to the call's
                // continuation inside the region, when that is where it goes.
                if let Some(&(_, back)) = self.returns.iter().find(|&&(at, _)| at == pc) {
                    let expected = self.b.ins().icmp_imm_s(IntCC::Equal, target, back as i64);
                    let predicted = self.b.create_block();
                    let elsewhere = self.b.create_block();
                    self.b.ins().brif(expected, predicted, &[], elsewhere, &[]);
                    self.b.seal_block(predicted);
                    self.b.seal_block(elsewhere);
                    self.b.switch_to_block(predicted);
                    self.exit_to(back, index + 1);
                    self.b.switch_to_block(elsewhere);
                }
                self.write_back(Some(target), index + 1);
                self.chain_by_lookup(target);
                return false;
            }
            Beq | Bne | Blt | Bge | Bltu | Bgeu => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let cc = match insn.op {
                    Beq => IntCC::Equal,
                    Bne => IntCC::NotEqual,
                    Blt => IntCC::SignedLessThan,
                    Bge => IntCC::SignedGreaterThanOrEqual,
                    Bltu => IntCC::UnsignedLessThan,
                    _ => IntCC::UnsignedGreaterThanOrEqual,
                };
                let cond = self.b.ins().icmp(cc, a, c);
                let taken = self.b.create_block();
                let fall = self.b.create_block();
                self.b.ins().brif(cond, taken, &[], fall, &[]);
                self.b.switch_to_block(taken);
                self.exit_to(pc.wrapping_add(i64::from(insn.imm) as u64), index + 1);
                self.b.switch_to_block(fall);
                self.exit_to(next, index + 1);
                return false;
            }
            Lb => self.load(insn, pc, index, 1, true),
            Lh => self.load(insn, pc, index, 2, true),
            Lw => self.load(insn, pc, index, 4, true),
            Ld => self.load(insn, pc, index, 8, false),
            Lbu => self.load(insn, pc, index, 1, false),
            Lhu => self.load(insn, pc, index, 2, false),
            Lwu => self.load(insn, pc, index, 4, false),
            Sb => self.store(insn, pc, index, 1),
            Sh => self.store(insn, pc, index, 2),
            Sw => self.store(insn, pc, index, 4),
            Sd => self.store(insn, pc, index, 8),
            Flw => self.fp_load(insn, pc, index, 4),
            Fld => self.fp_load(insn, pc, index, 8),
            Fsw => self.fp_store(insn, pc, index, 4),
            Fsd => self.fp_store(insn, pc, index, 8),
            Fence => {
                if crate::decode::fence_needs_host_barrier(insn.imm) {
                    self.b.ins().fence();
                }
            }
            Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Addiw | Slliw
            | Srliw | Sraiw => {
                let a = self.reg(insn.rs1);
                let imm = i64::from(insn.imm);
                let v = match insn.op {
                    Addi => self.b.ins().iadd_imm_s(a, imm),
                    Slti => {
                        let c = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, imm);
                        self.b.ins().uextend(types::I64, c)
                    }
                    Sltiu => {
                        let c = self.b.ins().icmp_imm_s(IntCC::UnsignedLessThan, a, imm);
                        self.b.ins().uextend(types::I64, c)
                    }
                    Xori => self.b.ins().bxor_imm_s(a, imm),
                    Ori => self.b.ins().bor_imm_s(a, imm),
                    Andi => self.b.ins().band_imm_s(a, imm),
                    Slli => self.b.ins().ishl_imm_s(a, imm & 63),
                    Srli => self.b.ins().ushr_imm_s(a, imm & 63),
                    Srai => self.b.ins().sshr_imm_s(a, imm & 63),
                    _ => {
                        let w = self.b.ins().ireduce(types::I32, a);
                        let r = match insn.op {
                            Addiw => self.b.ins().iadd_imm_s(w, imm),
                            Slliw => self.b.ins().ishl_imm_s(w, imm & 31),
                            Srliw => self.b.ins().ushr_imm_s(w, imm & 31),
                            _ => self.b.ins().sshr_imm_s(w, imm & 31),
                        };
                        self.b.ins().sextend(types::I64, r)
                    }
                };
                self.set(rd, v);
                let (width, left) = match insn.op {
                    Slli => (64, true),
                    Srli => (64, false),
                    Slliw => (32, true),
                    Srliw => (32, false),
                    _ => (0, false),
                };
                if width != 0 && rd != 0 {
                    self.shifts[usize::from(rd)] = Some(Shift {
                        source: a,
                        width,
                        left,
                        amount: (imm & i64::from(width - 1)) as u8,
                    });
                }
            }
            Add | Sub | Sll | Slt | Sltu | Xor | Srl | Sra | Or | And | Mul | Mulh | Mulhu
            | Mulhsu => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let v = match insn.op {
                    Add => self.b.ins().iadd(a, c),
                    Sub => self.b.ins().isub(a, c),
                    Sll => self.b.ins().ishl(a, c),
                    Srl => self.b.ins().ushr(a, c),
                    Sra => self.b.ins().sshr(a, c),
                    Slt => {
                        let f = self.b.ins().icmp(IntCC::SignedLessThan, a, c);
                        self.b.ins().uextend(types::I64, f)
                    }
                    Sltu => {
                        let f = self.b.ins().icmp(IntCC::UnsignedLessThan, a, c);
                        self.b.ins().uextend(types::I64, f)
                    }
                    Xor => self.b.ins().bxor(a, c),
                    Or => self.b.ins().bor(a, c),
                    And => self.b.ins().band(a, c),
                    Mul => self.b.ins().imul(a, c),
                    Mulh => self.b.ins().smulhi(a, c),
                    Mulhu => self.b.ins().umulhi(a, c),
                    _ => {
                        // mulhsu = mulhu(a, b) - (a < 0 ? b : 0)
                        let hi = self.b.ins().umulhi(a, c);
                        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                        let zero = self.b.ins().iconst(types::I64, 0);
                        let fix = self.b.ins().select(neg, c, zero);
                        self.b.ins().isub(hi, fix)
                    }
                };
                self.set(rd, v);
            }
            Div | Divu | Rem | Remu => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let signed = matches!(insn.op, Div | Rem);
                let rem = matches!(insn.op, Rem | Remu);
                let v = self.div(a, c, types::I64, signed, rem);
                self.set(rd, v);
            }
            Addw | Subw | Sllw | Srlw | Sraw | Mulw => {
                let op = insn.op;
                self.word_op(insn, |b, x, y| match op {
                    Addw => b.ins().iadd(x, y),
                    Subw => b.ins().isub(x, y),
                    Sllw => b.ins().ishl(x, y),
                    Srlw => b.ins().ushr(x, y),
                    Sraw => b.ins().sshr(x, y),
                    _ => b.ins().imul(x, y),
                });
            }
            Divw | Divuw | Remw | Remuw => {
                let a = self.reg(insn.rs1);
                let c = self.reg(insn.rs2);
                let a = self.b.ins().ireduce(types::I32, a);
                let c = self.b.ins().ireduce(types::I32, c);
                let signed = matches!(insn.op, Divw | Remw);
                let rem = matches!(insn.op, Remw | Remuw);
                let v = self.div(a, c, types::I32, signed, rem);
                let v = self.b.ins().sextend(types::I64, v);
                self.set(rd, v);
            }
            _ => unreachable!("helper and untranslatable operations are handled above"),
        }
        true
    }
}
