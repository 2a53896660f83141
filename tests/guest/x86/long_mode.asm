; Long mode: 4-level paging with 2 MiB and 4 KiB pages, 64-bit code and a
; 64-bit IDT, a no-execute page fault (error code with the fetch bit, CR2),
; #GP for a non-canonical address, and SYSCALL/SYSRET to level 3 and back.
%include "common.inc"
%include "pm.inc"

%define PML4 0x10000
%define PDPT 0x11000
%define PDIR 0x12000
%define PTAB 0x13000
%define P  1
%define RW 2
%define US 4
%define PS 0x80
%define NX_PAGE 0x400000
; Quadword slots (the shared SEEN/ERROR/SCRATCH are doublewords).
%define SEEN64 0x510
%define ERROR64 0x518
%define CR2_64 0x520

main32:
    ; Tables: the first 4 MiB as two 2 MiB pages, then 0x400000 as 4 KiB
    ; pages of which the first cannot be executed.
    mov edi, PML4
    xor eax, eax
    mov ecx, 4 * 1024
    rep stosd
    mov dword [PML4], PDPT | P | RW | US
    mov dword [PDPT], PDIR | P | RW | US
    mov dword [PDIR], 0 | P | RW | US | PS
    mov dword [PDIR + 8], 0x200000 | P | RW | US | PS
    mov dword [PDIR + 16], PTAB | P | RW | US
    mov dword [PTAB], NX_PAGE | P | RW
    mov dword [PTAB + 4], 0x80000000        ; NX
    mov dword [PTAB + 8], (NX_PAGE + 0x1000) | P | RW
    ; A RET on the no-execute page.
    mov byte [NX_PAGE], 0xC3
    mov eax, PML4
    mov cr3, eax
    mov eax, cr4
    or eax, 0x20                ; PAE
    mov cr4, eax
    mov ecx, 0xC0000080         ; EFER: LME, NXE, SCE
    rdmsr
    or eax, 0x901
    wrmsr
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp CODE64:(ROM + long_start)

bits 64
long_start:
    mov ax, DATA64
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, KSTACK
    POST 0x03
    ; A 64-bit IDT over the 32-bit one.
    xor ecx, ecx
.fill:
    mov eax, ecx
    mov rbx, ROM + unexpected64
    call set_gate64
    inc ecx
    cmp ecx, 256
    jne .fill
    mov eax, 13
    mov rbx, ROM + on_gp
    call set_gate64
    mov eax, 14
    mov rbx, ROM + on_pf
    call set_gate64
    lidt [ROM + idtr64]

    ; 64-bit arithmetic.
    mov rax, 0x123456789ABCDEF0
    mov rbx, rax
    ror rbx, 32
    mov rcx, 0x9ABCDEF012345678
    cmp rbx, rcx
    jne fail_arith
    POST 0x04

    ; Executing the no-execute page: present | fetch, CR2 its address.
    mov qword [SEEN64], 0
    mov rax, NX_PAGE
    call rax
after_nx:
    cmp qword [SEEN64], 14
    jne fail_nx
    cmp qword [ERROR64], 0x11
    jne fail_nx_code
    mov rax, NX_PAGE
    cmp [CR2_64], rax
    jne fail_cr2
    POST 0x05

    ; A non-canonical address: #GP(0).
    mov qword [SEEN64], 0
    mov rbx, 0x8000000000000000
    mov rax, [rbx]              ; three bytes
    cmp qword [SEEN64], 13
    jne fail_gp
    POST 0x06

    ; SYSCALL/SYSRET: STAR's kernel CS is CODE64 (SS is +8), SYSRET's base
    ; is USER32 (SS +8, 64-bit CS +16).
    mov ecx, 0xC0000081
    xor eax, eax
    mov edx, (USER32 << 16) | CODE64
    wrmsr
    mov ecx, 0xC0000082         ; LSTAR
    mov rax, ROM + on_syscall
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, 0xC0000084         ; SFMASK: IF
    mov eax, 0x200
    xor edx, edx
    wrmsr
    mov rcx, ROM + user
    mov r11, 0x202
    o64 sysret

user:
    mov rsp, USTACK
    mov rax, 42
    syscall
    cmp rax, 43
    jne .wrong
    xor eax, eax
    syscall
.wrong:
    mov rax, -1
    syscall

on_syscall:
    cmp rax, -1
    je fail_user
    ; RCX and R11 hold where and how to go back; CS is CODE64, level 0.
    mov rbx, cs
    cmp rbx, CODE64
    jne fail_syscall_cs
    test r11, 0x200
    jz fail_syscall_flags
    pushfq
    pop rbx
    test rbx, 0x200
    jnz fail_syscall_flags
    test rax, rax
    jz .done
    inc rax
    o64 sysret
.done:
    mov rbx, ss
    cmp rbx, DATA64
    jne fail_syscall_cs
    EXIT 0

on_pf:
    pop qword [ERROR64]
    mov qword [SEEN64], 14
    mov rax, cr2
    mov [CR2_64], rax
    ; Resume after the call that faulted.
    mov rsp, KSTACK
    mov rax, ROM + after_nx
    jmp rax

on_gp:
    pop qword [ERROR64]
    mov qword [SEEN64], 13
    add qword [rsp], 3
    iretq

unexpected64:
    EXIT 0x3f
fail_arith:
    EXIT 0x31
fail_nx:
    EXIT 0x32
fail_nx_code:
    EXIT 0x33
fail_cr2:
    EXIT 0x34
fail_gp:
    EXIT 0x35
fail_user:
    EXIT 0x36
fail_syscall_cs:
    EXIT 0x37
fail_syscall_flags:
    EXIT 0x38

; EAX = vector, RBX = handler: a 64-bit interrupt gate.
set_gate64:
    mov edi, eax
    shl edi, 4
    add edi, IDT_BASE
    mov [rdi], bx
    mov word [rdi + 2], CODE64
    mov word [rdi + 4], 0x8E00
    mov rdx, rbx
    shr rdx, 16
    mov [rdi + 6], dx
    shr rdx, 16
    mov [rdi + 8], edx
    mov dword [rdi + 12], 0
    ret

idtr64:
    dw 256 * 16 - 1
    dq IDT_BASE

RESET_VECTOR start
