//! Instruction decoding: 32-bit and compressed 16-bit encodings into one [`Insn`].
//!
//! Compressed instructions expand to the operation of their 32-bit equivalent, so
//! the interpreter (and later the translator) handle each operation once. Decoding
//! happens once per instruction location; the result is cached per page.

/// A decoded operation. `Undecoded` marks empty cache slots.
#[allow(missing_docs, reason = "variants are the instruction mnemonics")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Op {
    #[default]
    Undecoded,
    Illegal,
    // RV64I
    Lui,
    Auipc,
    Jal,
    Jalr,
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
    Lb,
    Lh,
    Lw,
    Ld,
    Lbu,
    Lhu,
    Lwu,
    Sb,
    Sh,
    Sw,
    Sd,
    Addi,
    Slti,
    Sltiu,
    Xori,
    Ori,
    Andi,
    Slli,
    Srli,
    Srai,
    Add,
    Sub,
    Sll,
    Slt,
    Sltu,
    Xor,
    Srl,
    Sra,
    Or,
    And,
    Addiw,
    Slliw,
    Srliw,
    Sraiw,
    Addw,
    Subw,
    Sllw,
    Srlw,
    Sraw,
    Fence,
    FenceI,
    Ecall,
    Ebreak,
    Mret,
    Sret,
    Wfi,
    SfenceVma,
    Csrrw,
    Csrrs,
    Csrrc,
    Csrrwi,
    Csrrsi,
    Csrrci,
    // M
    Mul,
    Mulh,
    Mulhsu,
    Mulhu,
    Div,
    Divu,
    Rem,
    Remu,
    Mulw,
    Divw,
    Divuw,
    Remw,
    Remuw,
    // A
    LrW,
    ScW,
    AmoSwapW,
    AmoAddW,
    AmoXorW,
    AmoAndW,
    AmoOrW,
    AmoMinW,
    AmoMaxW,
    AmoMinuW,
    AmoMaxuW,
    LrD,
    ScD,
    AmoSwapD,
    AmoAddD,
    AmoXorD,
    AmoAndD,
    AmoOrD,
    AmoMinD,
    AmoMaxD,
    AmoMinuD,
    AmoMaxuD,
    // F
    Flw,
    Fsw,
    FmaddS,
    FmsubS,
    FnmsubS,
    FnmaddS,
    FaddS,
    FsubS,
    FmulS,
    FdivS,
    FsqrtS,
    FsgnjS,
    FsgnjnS,
    FsgnjxS,
    FminS,
    FmaxS,
    FcvtWS,
    FcvtWuS,
    FcvtLS,
    FcvtLuS,
    FmvXW,
    FclassS,
    FeqS,
    FltS,
    FleS,
    FcvtSW,
    FcvtSWu,
    FcvtSL,
    FcvtSLu,
    FmvWX,
    // D
    Fld,
    Fsd,
    FmaddD,
    FmsubD,
    FnmsubD,
    FnmaddD,
    FaddD,
    FsubD,
    FmulD,
    FdivD,
    FsqrtD,
    FsgnjD,
    FsgnjnD,
    FsgnjxD,
    FminD,
    FmaxD,
    FcvtSD,
    FcvtDS,
    FcvtWD,
    FcvtWuD,
    FcvtLD,
    FcvtLuD,
    FmvXD,
    FclassD,
    FeqD,
    FltD,
    FleD,
    FcvtDW,
    FcvtDWu,
    FcvtDL,
    FcvtDLu,
    FmvDX,
}

/// One decoded instruction. `imm` holds the immediate (or the CSR number, or for
/// `Illegal` the raw instruction bits); `rm` the FP rounding-mode field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Insn {
    /// The operation.
    pub op: Op,
    /// Destination register.
    pub rd: u8,
    /// First source register.
    pub rs1: u8,
    /// Second source register.
    pub rs2: u8,
    /// Third source register (fused multiply-add).
    pub rs3: u8,
    /// Rounding mode field (FP) or fence/AMO ordering bits.
    pub rm: u8,
    /// Instruction length in bytes: 2 or 4.
    pub len: u8,
    /// Immediate, sign-extended.
    pub imm: i32,
}

/// Length of the instruction whose first halfword is `low`.
#[inline]
pub fn insn_len(low: u16) -> u8 {
    if low & 3 == 3 { 4 } else { 2 }
}

fn illegal(raw: u32, len: u8) -> Insn {
    Insn {
        op: Op::Illegal,
        len,
        imm: raw as i32,
        ..Insn::default()
    }
}

fn bits(raw: u32, hi: u32, lo: u32) -> u32 {
    (raw >> lo) & ((1 << (hi - lo + 1)) - 1)
}

fn sext(value: u32, width: u32) -> i32 {
    let shift = 32 - width;
    ((value << shift) as i32) >> shift
}

/// Decodes a 32-bit instruction.
pub fn decode32(raw: u32) -> Insn {
    use Op::*;
    let rd = bits(raw, 11, 7) as u8;
    let rs1 = bits(raw, 19, 15) as u8;
    let rs2 = bits(raw, 24, 20) as u8;
    let rs3 = bits(raw, 31, 27) as u8;
    let funct3 = bits(raw, 14, 12);
    let funct7 = bits(raw, 31, 25);
    let imm_i = (raw as i32) >> 20;
    let imm_s = (((raw as i32) >> 25) << 5) | bits(raw, 11, 7) as i32;
    let imm_b = sext(
        (bits(raw, 31, 31) << 12)
            | (bits(raw, 7, 7) << 11)
            | (bits(raw, 30, 25) << 5)
            | (bits(raw, 11, 8) << 1),
        13,
    );
    let imm_u = (raw & 0xffff_f000) as i32;
    let imm_j = sext(
        (bits(raw, 31, 31) << 20)
            | (bits(raw, 19, 12) << 12)
            | (bits(raw, 20, 20) << 11)
            | (bits(raw, 30, 21) << 1),
        21,
    );
    let make = |op: Op, imm: i32| Insn {
        op,
        rd,
        rs1,
        rs2,
        rs3,
        rm: funct3 as u8,
        len: 4,
        imm,
    };
    let bad = illegal(raw, 4);
    match raw & 0x7f {
        0x37 => make(Lui, imm_u),
        0x17 => make(Auipc, imm_u),
        0x6f => make(Jal, imm_j),
        0x67 if funct3 == 0 => make(Jalr, imm_i),
        0x63 => {
            let op = match funct3 {
                0 => Beq,
                1 => Bne,
                4 => Blt,
                5 => Bge,
                6 => Bltu,
                7 => Bgeu,
                _ => return bad,
            };
            make(op, imm_b)
        }
        0x03 => {
            let op = match funct3 {
                0 => Lb,
                1 => Lh,
                2 => Lw,
                3 => Ld,
                4 => Lbu,
                5 => Lhu,
                6 => Lwu,
                _ => return bad,
            };
            make(op, imm_i)
        }
        0x23 => {
            let op = match funct3 {
                0 => Sb,
                1 => Sh,
                2 => Sw,
                3 => Sd,
                _ => return bad,
            };
            make(op, imm_s)
        }
        0x13 => {
            let shamt = bits(raw, 25, 20) as i32;
            match funct3 {
                0 => make(Addi, imm_i),
                2 => make(Slti, imm_i),
                3 => make(Sltiu, imm_i),
                4 => make(Xori, imm_i),
                6 => make(Ori, imm_i),
                7 => make(Andi, imm_i),
                1 if bits(raw, 31, 26) == 0 => make(Slli, shamt),
                5 if bits(raw, 31, 26) == 0 => make(Srli, shamt),
                5 if bits(raw, 31, 26) == 0x10 => make(Srai, shamt),
                _ => bad,
            }
        }
        0x1b => {
            let shamt = i32::from(rs2);
            match (funct3, funct7) {
                (0, _) => make(Addiw, imm_i),
                (1, 0) => make(Slliw, shamt),
                (5, 0) => make(Srliw, shamt),
                (5, 0x20) => make(Sraiw, shamt),
                _ => bad,
            }
        }
        0x33 => {
            let op = match (funct7, funct3) {
                (0, 0) => Add,
                (0x20, 0) => Sub,
                (0, 1) => Sll,
                (0, 2) => Slt,
                (0, 3) => Sltu,
                (0, 4) => Xor,
                (0, 5) => Srl,
                (0x20, 5) => Sra,
                (0, 6) => Or,
                (0, 7) => And,
                (1, 0) => Mul,
                (1, 1) => Mulh,
                (1, 2) => Mulhsu,
                (1, 3) => Mulhu,
                (1, 4) => Div,
                (1, 5) => Divu,
                (1, 6) => Rem,
                (1, 7) => Remu,
                _ => return bad,
            };
            make(op, 0)
        }
        0x3b => {
            let op = match (funct7, funct3) {
                (0, 0) => Addw,
                (0x20, 0) => Subw,
                (0, 1) => Sllw,
                (0, 5) => Srlw,
                (0x20, 5) => Sraw,
                (1, 0) => Mulw,
                (1, 4) => Divw,
                (1, 5) => Divuw,
                (1, 6) => Remw,
                (1, 7) => Remuw,
                _ => return bad,
            };
            make(op, 0)
        }
        0x0f => match funct3 {
            // fm, pred and succ (bits 31:20), for the host barrier it needs.
            0 => make(Fence, bits(raw, 31, 20) as i32),
            1 => make(FenceI, 0),
            _ => bad,
        },
        0x73 => {
            let csr = bits(raw, 31, 20) as i32;
            match funct3 {
                0 => match raw {
                    0x0000_0073 => make(Ecall, 0),
                    0x0010_0073 => make(Ebreak, 0),
                    0x3020_0073 => make(Mret, 0),
                    0x1020_0073 => make(Sret, 0),
                    0x1050_0073 => make(Wfi, 0),
                    _ if funct7 == 0x09 && rd == 0 => make(SfenceVma, 0),
                    _ => bad,
                },
                1 => make(Csrrw, csr),
                2 => make(Csrrs, csr),
                3 => make(Csrrc, csr),
                5 => make(Csrrwi, csr),
                6 => make(Csrrsi, csr),
                7 => make(Csrrci, csr),
                _ => bad,
            }
        }
        0x2f => {
            let funct5 = bits(raw, 31, 27);
            let op = match (funct3, funct5) {
                (2, 0x02) if rs2 == 0 => LrW,
                (2, 0x03) => ScW,
                (2, 0x01) => AmoSwapW,
                (2, 0x00) => AmoAddW,
                (2, 0x04) => AmoXorW,
                (2, 0x0c) => AmoAndW,
                (2, 0x08) => AmoOrW,
                (2, 0x10) => AmoMinW,
                (2, 0x14) => AmoMaxW,
                (2, 0x18) => AmoMinuW,
                (2, 0x1c) => AmoMaxuW,
                (3, 0x02) if rs2 == 0 => LrD,
                (3, 0x03) => ScD,
                (3, 0x01) => AmoSwapD,
                (3, 0x00) => AmoAddD,
                (3, 0x04) => AmoXorD,
                (3, 0x0c) => AmoAndD,
                (3, 0x08) => AmoOrD,
                (3, 0x10) => AmoMinD,
                (3, 0x14) => AmoMaxD,
                (3, 0x18) => AmoMinuD,
                (3, 0x1c) => AmoMaxuD,
                _ => return bad,
            };
            make(op, 0)
        }
        0x07 => match funct3 {
            2 => make(Flw, imm_i),
            3 => make(Fld, imm_i),
            _ => bad,
        },
        0x27 => match funct3 {
            2 => make(Fsw, imm_s),
            3 => make(Fsd, imm_s),
            _ => bad,
        },
        0x43 | 0x47 | 0x4b | 0x4f => {
            let double = match bits(raw, 26, 25) {
                0 => false,
                1 => true,
                _ => return bad,
            };
            let op = match (raw & 0x7f, double) {
                (0x43, false) => FmaddS,
                (0x47, false) => FmsubS,
                (0x4b, false) => FnmsubS,
                (0x4f, false) => FnmaddS,
                (0x43, true) => FmaddD,
                (0x47, true) => FmsubD,
                (0x4b, true) => FnmsubD,
                _ => FnmaddD,
            };
            make(op, 0)
        }
        0x53 => decode_op_fp(raw, funct7, funct3, rs2).map_or(bad, |op| make(op, 0)),
        _ => bad,
    }
}

fn decode_op_fp(_raw: u32, funct7: u32, funct3: u32, rs2: u8) -> Option<Op> {
    use Op::*;
    Some(match funct7 {
        0x00 => FaddS,
        0x04 => FsubS,
        0x08 => FmulS,
        0x0c => FdivS,
        0x2c if rs2 == 0 => FsqrtS,
        0x10 => match funct3 {
            0 => FsgnjS,
            1 => FsgnjnS,
            2 => FsgnjxS,
            _ => return None,
        },
        0x14 => match funct3 {
            0 => FminS,
            1 => FmaxS,
            _ => return None,
        },
        0x60 => match rs2 {
            0 => FcvtWS,
            1 => FcvtWuS,
            2 => FcvtLS,
            3 => FcvtLuS,
            _ => return None,
        },
        0x70 if rs2 == 0 => match funct3 {
            0 => FmvXW,
            1 => FclassS,
            _ => return None,
        },
        0x50 => match funct3 {
            2 => FeqS,
            1 => FltS,
            0 => FleS,
            _ => return None,
        },
        0x68 => match rs2 {
            0 => FcvtSW,
            1 => FcvtSWu,
            2 => FcvtSL,
            3 => FcvtSLu,
            _ => return None,
        },
        0x78 if rs2 == 0 && funct3 == 0 => FmvWX,
        0x01 => FaddD,
        0x05 => FsubD,
        0x09 => FmulD,
        0x0d => FdivD,
        0x2d if rs2 == 0 => FsqrtD,
        0x11 => match funct3 {
            0 => FsgnjD,
            1 => FsgnjnD,
            2 => FsgnjxD,
            _ => return None,
        },
        0x15 => match funct3 {
            0 => FminD,
            1 => FmaxD,
            _ => return None,
        },
        0x20 if rs2 == 1 => FcvtSD,
        0x21 if rs2 == 0 => FcvtDS,
        0x61 => match rs2 {
            0 => FcvtWD,
            1 => FcvtWuD,
            2 => FcvtLD,
            3 => FcvtLuD,
            _ => return None,
        },
        0x71 if rs2 == 0 => match funct3 {
            0 => FmvXD,
            1 => FclassD,
            _ => return None,
        },
        0x51 => match funct3 {
            2 => FeqD,
            1 => FltD,
            0 => FleD,
            _ => return None,
        },
        0x69 => match rs2 {
            0 => FcvtDW,
            1 => FcvtDWu,
            2 => FcvtDL,
            3 => FcvtDLu,
            _ => return None,
        },
        0x79 if rs2 == 0 && funct3 == 0 => FmvDX,
        _ => return None,
    })
}

/// Decodes a 16-bit compressed instruction (RV64C) into its 32-bit equivalent.
pub fn decode16(raw: u16) -> Insn {
    use Op::*;
    let r = u32::from(raw);
    let bad = illegal(r, 2);
    let b = |hi, lo| bits(r, hi, lo);
    // Registers x8..x15 in the 3-bit fields.
    let rd_p = (b(4, 2) + 8) as u8;
    let rs1_p = (b(9, 7) + 8) as u8;
    let rd_full = b(11, 7) as u8;
    let rs2_full = b(6, 2) as u8;
    let insn = |op: Op, rd: u8, rs1: u8, rs2: u8, imm: i32| Insn {
        op,
        rd,
        rs1,
        rs2,
        rs3: 0,
        // Compressed FP loads/stores have no rounding mode; AMOs do not exist.
        rm: 0,
        len: 2,
        imm,
    };
    let funct3 = b(15, 13);
    match (r & 3, funct3) {
        (0, 0) => {
            // c.addi4spn
            let imm = (b(10, 7) << 6) | (b(12, 11) << 4) | (b(5, 5) << 3) | (b(6, 6) << 2);
            if imm == 0 {
                return bad;
            }
            insn(Addi, rd_p, 2, 0, imm as i32)
        }
        (0, 1) => insn(
            Fld,
            rd_p,
            rs1_p,
            0,
            ((b(6, 5) << 6) | (b(12, 10) << 3)) as i32,
        ),
        (0, 2) => insn(
            Lw,
            rd_p,
            rs1_p,
            0,
            ((b(5, 5) << 6) | (b(12, 10) << 3) | (b(6, 6) << 2)) as i32,
        ),
        (0, 3) => insn(
            Ld,
            rd_p,
            rs1_p,
            0,
            ((b(6, 5) << 6) | (b(12, 10) << 3)) as i32,
        ),
        (0, 5) => insn(
            Fsd,
            0,
            rs1_p,
            rd_p,
            ((b(6, 5) << 6) | (b(12, 10) << 3)) as i32,
        ),
        (0, 6) => insn(
            Sw,
            0,
            rs1_p,
            rd_p,
            ((b(5, 5) << 6) | (b(12, 10) << 3) | (b(6, 6) << 2)) as i32,
        ),
        (0, 7) => insn(
            Sd,
            0,
            rs1_p,
            rd_p,
            ((b(6, 5) << 6) | (b(12, 10) << 3)) as i32,
        ),
        (1, 0) => {
            // c.addi / c.nop
            let imm = sext((b(12, 12) << 5) | b(6, 2), 6);
            insn(Addi, rd_full, rd_full, 0, imm)
        }
        (1, 1) => {
            // c.addiw (RV64); rd = 0 is reserved
            if rd_full == 0 {
                return bad;
            }
            let imm = sext((b(12, 12) << 5) | b(6, 2), 6);
            insn(Addiw, rd_full, rd_full, 0, imm)
        }
        (1, 2) => {
            // c.li
            let imm = sext((b(12, 12) << 5) | b(6, 2), 6);
            insn(Addi, rd_full, 0, 0, imm)
        }
        (1, 3) => {
            if rd_full == 2 {
                // c.addi16sp
                let imm = sext(
                    (b(12, 12) << 9)
                        | (b(4, 3) << 7)
                        | (b(5, 5) << 6)
                        | (b(2, 2) << 5)
                        | (b(6, 6) << 4),
                    10,
                );
                if imm == 0 {
                    return bad;
                }
                insn(Addi, 2, 2, 0, imm)
            } else {
                // c.lui
                let imm = sext((b(12, 12) << 17) | (b(6, 2) << 12), 18);
                if imm == 0 {
                    return bad;
                }
                insn(Lui, rd_full, 0, 0, imm)
            }
        }
        (1, 4) => {
            let shamt = ((b(12, 12) << 5) | b(6, 2)) as i32;
            match b(11, 10) {
                0 => insn(Srli, rs1_p, rs1_p, 0, shamt),
                1 => insn(Srai, rs1_p, rs1_p, 0, shamt),
                2 => insn(Andi, rs1_p, rs1_p, 0, sext((b(12, 12) << 5) | b(6, 2), 6)),
                _ => {
                    let rs2 = rd_p;
                    let op = match (b(12, 12), b(6, 5)) {
                        (0, 0) => Sub,
                        (0, 1) => Xor,
                        (0, 2) => Or,
                        (0, 3) => And,
                        (1, 0) => Subw,
                        (1, 1) => Addw,
                        _ => return bad,
                    };
                    insn(op, rs1_p, rs1_p, rs2, 0)
                }
            }
        }
        (1, 5) => {
            // c.j
            let imm = sext(
                (b(12, 12) << 11)
                    | (b(8, 8) << 10)
                    | (b(10, 9) << 8)
                    | (b(6, 6) << 7)
                    | (b(7, 7) << 6)
                    | (b(2, 2) << 5)
                    | (b(11, 11) << 4)
                    | (b(5, 3) << 1),
                12,
            );
            insn(Jal, 0, 0, 0, imm)
        }
        (1, 6) | (1, 7) => {
            let imm = sext(
                (b(12, 12) << 8)
                    | (b(6, 5) << 6)
                    | (b(2, 2) << 5)
                    | (b(11, 10) << 3)
                    | (b(4, 3) << 1),
                9,
            );
            let op = if funct3 == 6 { Beq } else { Bne };
            insn(op, 0, rs1_p, 0, imm)
        }
        (2, 0) => {
            let shamt = ((b(12, 12) << 5) | b(6, 2)) as i32;
            insn(Slli, rd_full, rd_full, 0, shamt)
        }
        (2, 1) => insn(
            Fld,
            rd_full,
            2,
            0,
            ((b(4, 2) << 6) | (b(12, 12) << 5) | (b(6, 5) << 3)) as i32,
        ),
        (2, 2) => {
            if rd_full == 0 {
                return bad;
            }
            insn(
                Lw,
                rd_full,
                2,
                0,
                ((b(3, 2) << 6) | (b(12, 12) << 5) | (b(6, 4) << 2)) as i32,
            )
        }
        (2, 3) => {
            if rd_full == 0 {
                return bad;
            }
            insn(
                Ld,
                rd_full,
                2,
                0,
                ((b(4, 2) << 6) | (b(12, 12) << 5) | (b(6, 5) << 3)) as i32,
            )
        }
        (2, 4) => match (b(12, 12), rd_full, rs2_full) {
            (0, 0, 0) => bad,
            (0, rs1, 0) => insn(Jalr, 0, rs1, 0, 0),
            (0, rd, rs2) => insn(Add, rd, 0, rs2, 0),
            (1, 0, 0) => insn(Ebreak, 0, 0, 0, 0),
            (1, rs1, 0) => insn(Jalr, 1, rs1, 0, 0),
            (_, rd, rs2) => insn(Add, rd, rd, rs2, 0),
        },
        (2, 5) => insn(
            Fsd,
            0,
            2,
            rs2_full,
            ((b(9, 7) << 6) | (b(12, 10) << 3)) as i32,
        ),
        (2, 6) => insn(
            Sw,
            0,
            2,
            rs2_full,
            ((b(8, 7) << 6) | (b(12, 9) << 2)) as i32,
        ),
        (2, 7) => insn(
            Sd,
            0,
            2,
            rs2_full,
            ((b(9, 7) << 6) | (b(12, 10) << 3)) as i32,
        ),
        _ => bad,
    }
}

/// Decodes an instruction from its first halfword and, for 32-bit ones, its second.
pub fn decode(low: u16, high: u16) -> Insn {
    if insn_len(low) == 4 {
        decode32(u32::from(low) | (u32::from(high) << 16))
    } else {
        decode16(low)
    }
}

/// Whether a `fence` whose bits 31:20 (fm, pred, succ) are `bits` needs a host
/// barrier when harts run on host threads. An x86-64 host keeps every order but
/// a store before a later load (TSO), so only a fence ordering guest writes
/// before guest reads needs one there (and `fence.tso` never does); a weaker
/// host needs one for every fence that orders memory. Device (I/O) accesses go
/// through locks, which order themselves.
pub fn fence_needs_host_barrier(bits: i32) -> bool {
    const R: i32 = 0b10;
    const W: i32 = 0b01;
    const FM_TSO: i32 = 0b1000;
    let (fm, pred, succ) = ((bits >> 8) & 0xf, (bits >> 4) & 0xf, bits & 0xf);
    if cfg!(target_arch = "x86_64") {
        fm != FM_TSO && pred & W != 0 && succ & R != 0
    } else {
        (pred & (R | W)) != 0 && (succ & (R | W)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_keep_their_ordering_bits_and_need_a_barrier_only_for_write_then_read() {
        // fence rw,rw
        let full = decode32(0x0330_000f);
        assert_eq!((full.op, full.imm), (Op::Fence, 0x033));
        assert!(fence_needs_host_barrier(full.imm));
        // fence w,r orders a store before a load: a barrier on every host.
        assert!(fence_needs_host_barrier(0x012));
        // fence.tso (fm = 1000, rw,rw) and fence r,rw never need one on x86-64.
        let tso = decode32(0x8330_000f);
        assert_eq!(tso.imm, 0x833);
        if cfg!(target_arch = "x86_64") {
            assert!(!fence_needs_host_barrier(tso.imm));
            assert!(!fence_needs_host_barrier(0x023));
            assert!(!fence_needs_host_barrier(0x011));
        }
        // fence i,o orders device accesses only.
        assert!(!fence_needs_host_barrier(0x084));
    }

    #[test]
    fn decodes_common_32_bit_forms() {
        // addi a0, a0, -1
        let i = decode32(0xfff5_0513);
        assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Addi, 10, 10, -1));
        // sd ra, 8(sp)
        let i = decode32(0x0011_3423);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Sd, 2, 1, 8));
        // beq a0, a1, -8
        let i = decode32(0xfeb5_0ce3);
        assert_eq!((i.op, i.imm), (Op::Beq, -8));
        // jal ra, 2048
        let i = decode32(0x0010_00ef);
        assert_eq!((i.op, i.rd, i.imm), (Op::Jal, 1, 2048));
        // csrr a0, mhartid
        let i = decode32(0xf140_2573);
        assert_eq!((i.op, i.rd, i.imm), (Op::Csrrs, 10, 0xf14));
        // srai a0, a0, 63
        let i = decode32(0x43f5_5513);
        assert_eq!((i.op, i.imm), (Op::Srai, 63));
        assert_eq!(decode32(0xffff_ffff).op, Op::Illegal);
        assert_eq!(decode32(0).op, Op::Illegal);
    }

    #[test]
    fn decodes_compressed_forms() {
        // c.addi sp, -16 is 0x1141
        let i = decode16(0x1141);
        assert_eq!((i.op, i.rd, i.rs1, i.imm, i.len), (Op::Addi, 2, 2, -16, 2));
        // c.sdsp ra, 8(sp) is 0xe406
        let i = decode16(0xe406);
        assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Sd, 2, 1, 8));
        // c.ldsp ra, 8(sp) is 0x60a2
        let i = decode16(0x60a2);
        assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Ld, 1, 2, 8));
        // c.jr ra (ret) is 0x8082
        let i = decode16(0x8082);
        assert_eq!((i.op, i.rd, i.rs1), (Op::Jalr, 0, 1));
        // c.mv a0, a1 is 0x852e
        let i = decode16(0x852e);
        assert_eq!((i.op, i.rd, i.rs1, i.rs2), (Op::Add, 10, 0, 11));
        // c.ebreak
        assert_eq!(decode16(0x9002).op, Op::Ebreak);
        // c.j -2 (0xbffd)
        let i = decode16(0xbffd);
        assert_eq!((i.op, i.imm), (Op::Jal, -2));
        // c.beqz a0, 0 ... c.bnez a5, -4 is 0xfff5
        let i = decode16(0xfff5);
        assert_eq!((i.op, i.rs1, i.imm), (Op::Bne, 15, -4));
        // c.lui a0, 0xfffff -> imm -4096 (0x757d)
        let i = decode16(0x757d);
        assert_eq!((i.op, i.rd, i.imm), (Op::Lui, 10, -4096));
        // The all-zero halfword is defined illegal.
        assert_eq!(decode16(0).op, Op::Illegal);
    }

    #[test]
    fn every_halfword_decodes_without_panicking() {
        for raw in 0..=u16::MAX {
            let insn = decode16(raw);
            assert!(insn.len == 2 || raw & 3 == 3);
        }
    }
}
