/* Bare-metal start-up for the QEMU Cortex-M boards (mps2-an386, mps2-an500, mps2-an505, mps3-an547).
 *
 * The vector table's reset entry enables the FPU (and, on Armv8.1-M, the Helium/MVE unit, which shares the
 * CP10/CP11 enables), copies .data from its load address, zeroes .bss, opens newlib's semihosting file handles,
 * reads the program arguments with the SYS_GET_CMDLINE semihosting call (QEMU joins its
 * -semihosting-config arg=... entries with spaces), runs main() and exits through newlib's semihosting _exit, so
 * QEMU's exit status is main's return value. Every fault prints one line on the host's stderr and stops QEMU with
 * a non-zero status. Part of intonly's board support (codegen/c/boards/); linked with --specs=rdimon.specs and
 * one of the <machine>.ld scripts, whose ENTRY is Reset_Handler: newlib's own crt0 (_start) is linked but never
 * runs, because it moves the stack to where SYS_HEAPINFO says, and QEMU 7.2 answers with its own idea of the
 * board's RAM (on mps3-an547: 0x00000000-0x00080000, the ITCM that holds the code), not the linker script's. */
#include <stdint.h>
#include <stdlib.h>

int main(int argc, char **argv);
void __libc_init_array(void);
void initialise_monitor_handles(void);
void Reset_Handler(void);
void Fault_Handler(void);

/* Linker-script symbols (cortex-m-sections.ld). */
extern uint32_t __stack_top;
extern uint32_t __data_load__, __data_start__, __data_end__;
extern uint32_t __bss_start__, __bss_end__;

#define SYS_WRITE0 0x04u
#define SYS_GET_CMDLINE 0x15u
#define SYS_EXIT 0x18u
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

#define MAX_ARGS 16
static char cmdline[512];
static char *args[MAX_ARGS + 1];

static int read_args(void)
{
    uint32_t block[2];
    int argc = 0;
    char *p;
    block[0] = (uint32_t)(uintptr_t)cmdline;
    block[1] = sizeof(cmdline) - 1;
    if (semihost(SYS_GET_CMDLINE, block) != 0) {
        cmdline[0] = '\0';
    }
    cmdline[sizeof(cmdline) - 1] = '\0';
    for (p = cmdline; *p != '\0' && argc < MAX_ARGS;) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        args[argc++] = p;
        while (*p != '\0' && *p != ' ') {
            ++p;
        }
    }
    args[argc] = (char *)0;
    return argc;
}

void Reset_Handler(void)
{
    uint32_t *src, *dst;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10 and CP11 (the FPU and, on Armv8.1-M, MVE). */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (src = &__data_load__, dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    initialise_monitor_handles();
    __libc_init_array();
    exit(main(read_args(), args));
}

void Fault_Handler(void)
{
    semihost(SYS_WRITE0, "intonly board: fault exception (HardFault/MemManage/BusFault/UsageFault/SecureFault)\n");
    semihost(SYS_EXIT, (const void *)(uintptr_t)ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
    for (;;) {
    }
}

/* The architectural exceptions only: the generated program enables no interrupts. */
__attribute__((section(".vectors"), used)) static const uintptr_t vectors[16] = {
    (uintptr_t)&__stack_top,
    (uintptr_t)Reset_Handler,
    (uintptr_t)Fault_Handler, /* NMI */
    (uintptr_t)Fault_Handler, /* HardFault */
    (uintptr_t)Fault_Handler, /* MemManage */
    (uintptr_t)Fault_Handler, /* BusFault */
    (uintptr_t)Fault_Handler, /* UsageFault */
    (uintptr_t)Fault_Handler, /* SecureFault (Armv8-M) */
    0, 0, 0,
    (uintptr_t)Fault_Handler, /* SVCall */
    (uintptr_t)Fault_Handler, /* DebugMonitor */
    0,
    (uintptr_t)Fault_Handler, /* PendSV */
    (uintptr_t)Fault_Handler, /* SysTick */
};
