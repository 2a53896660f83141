; A Multiboot (v1) kernel that checks what its boot loader handed over and
; reports through isa-debug-exit at port 0xF4: 0x10 when everything holds
; (exit status 33), 0x20 + the number of the failed check otherwise.
; Booted with `-kernel multiboot.bin -initrd "MODULE arg" -append hello` on
; QEMU's PC and on Turing's; the module must start with "MOD1".
; Assembled flat (`nasm -f bin`), the header gives the load addresses; with
; -DELF (`nasm -f elf32`, linked at 1 MiB) the loader takes the ELF's segments.

bits 32

MAGIC equ 0x1BADB002
%ifdef ELF
; Page-aligned modules, memory information.
FLAGS equ 0x00000003
section .text
%else
; The same, and the load addresses in this header.
FLAGS equ 0x00010003
org 0x100000
%endif

header:
    dd MAGIC
    dd FLAGS
    dd -(MAGIC + FLAGS)
    dd header               ; header_addr
    dd 0x100000             ; load_addr: the file starts there
    dd 0                    ; load_end_addr: all of the file
    dd bss_end              ; bss_end_addr
    dd start                ; entry_addr

%macro check 2              ; condition code that fails, check number
    j%1 fail_%2
%endmacro

global start
start:
    cmp eax, 0x2BADB002
    check ne, 1
    ; Flags: memory, command line, modules, memory map.
    mov ecx, [ebx]
    and ecx, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 6)
    cmp ecx, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 6)
    check ne, 2
    cmp dword [ebx + 4], 639            ; mem_lower in KiB
    check ne, 3
    cmp dword [ebx + 8], 63 * 1024      ; mem_upper: the machine has 128 MiB
    check b, 4
    ; The command line is "<kernel path> hello".
    mov esi, [ebx + 16]
.to_end:
    cmp byte [esi], 0
    je .at_end
    inc esi
    jmp .to_end
.at_end:
    cmp dword [esi - 4], 'ello'
    check ne, 5
    cmp word [esi - 6], ' h'
    check ne, 5
    ; One module, page-aligned, holding "MOD1", with its command line.
    cmp dword [ebx + 20], 1
    check ne, 6
    mov esi, [ebx + 24]
    mov edi, [esi]                      ; mod_start
    test edi, 0xfff
    check nz, 7
    cmp dword [edi], 'MOD1'
    check ne, 8
    mov ecx, [esi + 4]                  ; mod_end
    cmp ecx, edi
    check be, 8
    mov esi, [esi + 8]                  ; the module's command line ends in " arg"
.mod_end:
    cmp byte [esi], 0
    je .mod_at_end
    inc esi
    jmp .mod_end
.mod_at_end:
    cmp dword [esi - 4], ' arg'
    check ne, 9
    ; The memory map: its first entry is RAM from address 0.
    cmp dword [ebx + 44], 24            ; mmap_length: at least one entry
    check b, 10
    mov esi, [ebx + 48]
    cmp dword [esi + 4], 0
    check ne, 11
    cmp dword [esi + 20], 1
    check ne, 11
    ; The bss is zero.
    mov edi, bss_start
    mov ecx, (bss_end - bss_start) / 4
    xor eax, eax
    repe scasd
    check ne, 12
    ; Protected mode with flat segments and paging off.
    mov eax, cr0
    test eax, 0x80000000
    check nz, 13
    mov al, 0x10
    jmp report

%assign n 1
%rep 13
fail_ %+ n:
    mov al, 0x20 + n
    jmp report
%assign n n + 1
%endrep

report:
    out 0xf4, al
.halt:
    cli
    hlt
    jmp .halt

%ifdef ELF
section .bss
bss_start:
    resb 0x2000
bss_end:
%else
align 4
bss_start:
bss_end equ bss_start + 0x2000
%endif
