//! Instruction encoders for the crate's unit tests (hand-assembled RV64
//! programs).

/// `addi rd, rs1, imm`
pub fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (rd << 7) | 0x13
}

/// `jal rd, offset`
pub fn jal(rd: u32, offset: i32) -> u32 {
    let o = offset as u32;
    (((o >> 20) & 1) << 31)
        | (((o >> 1) & 0x3ff) << 21)
        | (((o >> 11) & 1) << 20)
        | (((o >> 12) & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}

/// A conditional branch with `funct3` (0 beq, 1 bne, 4 blt, ...).
fn branch(funct3: u32, rs1: u32, rs2: u32, offset: i32) -> u32 {
    let o = offset as u32;
    (((o >> 12) & 1) << 31)
        | (((o >> 5) & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (funct3 << 12)
        | (((o >> 1) & 0xf) << 8)
        | (((o >> 11) & 1) << 7)
        | 0x63
}

/// `bne rs1, rs2, offset`
pub fn bne(rs1: u32, rs2: u32, offset: i32) -> u32 {
    branch(1, rs1, rs2, offset)
}

/// `blt rs1, rs2, offset`
pub fn blt(rs1: u32, rs2: u32, offset: i32) -> u32 {
    branch(4, rs1, rs2, offset)
}

/// `sw rs2, offset(rs1)`
pub fn sw(rs2: u32, rs1: u32, offset: i32) -> u32 {
    let o = offset as u32;
    (((o >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (2 << 12) | ((o & 0x1f) << 7) | 0x23
}

/// An R-type instruction.
pub fn r_type(funct7: u32, rs2: u32, rs1: u32, funct3: u32, rd: u32, opcode: u32) -> u32 {
    (funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
}

/// `ret`
pub const RET: u32 = 0x0000_8067;
/// `ebreak`
pub const EBREAK: u32 = 0x0010_0073;
