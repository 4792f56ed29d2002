# tune_pareto.gp -- the candidates of `llmsim tune`: cost against SLO
# attainment and against TTFT p99, the Pareto front, the baseline and the
# winner.
#
# Run by sim/tune_report.c in the tune output directory with the script on
# stdin; no placeholders.  Reads tune_chart_points.csv, columns
# cost_usd,slo_attainment,ttft_p99_s,feasible,front,best,baseline (the last
# four 0 or 1), the front's rows sorted by cost.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 960,420 noenhanced font "sans,10"
} else {
    set terminal png size 960,420 noenhanced
}
set datafile separator ","
set grid
set border 3
set tics nomirror
set key bottom right box opaque
set output "chart_tune_pareto.png"
set multiplot layout 1,2 title "Candidates on the whole workload (means over seeds)"
set xlabel "cost (USD)"
set ylabel "SLO attainment"
sel(c, v) = column(c) == 1 ? v : NaN
plot "tune_chart_points.csv" using 1:2 with points pt 7 ps 0.6 lc rgb "#b0b0b0" title "candidate", \
     "" using 1:(sel(4, column(2))) with points pt 7 ps 0.6 lc rgb "#4c72b0" title "meets the constraints", \
     "" using (sel(5, column(1))):(sel(5, column(2))) with linespoints pt 6 lw 1.5 lc rgb "#55a868" title "Pareto front", \
     "" using (sel(7, column(1))):(sel(7, column(2))) with points pt 5 ps 1.4 lc rgb "#000000" title "baseline", \
     "" using (sel(6, column(1))):(sel(6, column(2))) with points pt 3 ps 2 lw 2 lc rgb "#c44e52" title "best"
set ylabel "TTFT p99 (s)"
set key top right box opaque
plot "tune_chart_points.csv" using 1:3 with points pt 7 ps 0.6 lc rgb "#b0b0b0" title "candidate", \
     "" using 1:(sel(4, column(3))) with points pt 7 ps 0.6 lc rgb "#4c72b0" title "meets the constraints", \
     "" using (sel(5, column(1))):(sel(5, column(3))) with linespoints pt 6 lw 1.5 lc rgb "#55a868" title "Pareto front", \
     "" using (sel(7, column(1))):(sel(7, column(3))) with points pt 5 ps 1.4 lc rgb "#000000" title "baseline", \
     "" using (sel(6, column(1))):(sel(6, column(3))) with points pt 3 ps 2 lw 2 lc rgb "#c44e52" title "best"
unset multiplot
set output
