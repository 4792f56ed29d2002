# tune_knob.gp -- what one knob buys: cost (with its spread over seeds) and
# TTFT p99 at each of the knob's values, the other knobs at the winner's.
#
# Run by sim/tune_report.c in the tune output directory once per knob, with
# two lines set before it: knob = N (the chart number, from 1) and
# knob_key = "KEY" (a scenario key path: letters, digits and _.[]- only).
# Reads tune_chart_knob_N.csv, columns value,cost_usd,cost_usd_sd,ttft_p99_s,
# feasible,best (the value as text, one row per value in the space's order).
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 640,400 noenhanced font "sans,10"
} else {
    set terminal png size 640,400 noenhanced
}
set datafile separator ","
set grid
set border 11
set tics nomirror
set ytics nomirror
set y2tics
set key below center horizontal
set xlabel knob_key
set ylabel "cost (USD)"
set y2label "TTFT p99 (s)"
set offsets 0.3, 0.3, 0, 0
set yrange [0:*]
set y2range [0:*]
file = sprintf("tune_chart_knob_%d.csv", knob)
set output sprintf("chart_tune_knob_%d.png", knob)
set title "Cost and TTFT p99 per value (others at the optimum)"
plot file using 0:2:3:xticlabels(1) with yerrorlines lw 2 pt 7 lc rgb "#4c72b0" title "cost", \
     "" using 0:4 axes x1y2 with linespoints lw 2 pt 5 dt 2 lc rgb "#dd8452" title "TTFT p99", \
     "" using 0:(column(6) == 1 ? column(2) : NaN) with points pt 3 ps 2.5 lw 2 lc rgb "#c44e52" title "best", \
     "" using 0:(column(5) == 0 ? column(2) : NaN) with points pt 2 ps 1.5 lc rgb "#000000" title "misses the constraints"
set output
