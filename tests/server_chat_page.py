"""server_chat_page.py -- the chat page at / in headless Chromium (Selenium).

Usage: server_chat_page.py URL KEY
The server requires KEY.  Sends two messages with the key (answers stream
in, the conversation is kept, tokens/s is shown), then one with a wrong key
(the error is shown).  Exits 1 if any check fails.
"""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, key = sys.argv[1], sys.argv[2]
opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    opts.add_argument(a)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
failed = 0


def check(desc, cond, detail=""):
    global failed
    print(("ok - " if cond else "not ok - ") + desc + ("" if cond else " " + str(detail)))
    failed += 0 if cond else 1


def send(text, n_assistant):
    box = driver.find_element(By.ID, "prompt")
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()
    WebDriverWait(driver, 60).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant, .msg.error")) >= n_assistant
        and d.find_element(By.ID, "send").is_enabled())


try:
    driver.get(url)
    check("the page loads with no external assets",
          all(not (s.get_attribute("src") or "").startswith("http") for s in driver.find_elements(By.TAG_NAME, "script")))
    driver.find_element(By.ID, "max").clear()
    driver.find_element(By.ID, "max").send_keys("24")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.ID, "prompt").click()  # leaving the key field loads the model's name
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "model").text != "")
    check("the model's name is shown once the key is given", "stories260K" in driver.find_element(By.ID, "model").text)
    send("Once upon a time", 1)
    answers = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")
    check("the first answer streams in", len(answers) == 1 and len(answers[0].text) > 0, [a.text for a in answers])
    stats = driver.find_element(By.ID, "stats").text
    check("tokens/s is shown", "tokens/s" in stats and stats.split()[0].isdigit() and int(stats.split()[0]) > 0, stats)
    n1 = driver.execute_script("return conversation.length")
    send("And then?", 2)
    n2 = driver.execute_script("return conversation.length")
    check("the conversation is kept (2 -> 4 messages)", n1 == 2 and n2 == 4, (n1, n2))
    check("no error shown", not driver.find_elements(By.CSS_SELECTOR, ".msg.error"))
    driver.find_element(By.ID, "key").clear()
    driver.find_element(By.ID, "key").send_keys("sk-wrong")
    send("with a wrong key", 3)
    errs = driver.find_elements(By.CSS_SELECTOR, ".msg.error")
    check("a wrong key shows the server's error", len(errs) == 1 and "invalid API key" in errs[0].text,
          [e.text for e in errs])
finally:
    driver.quit()
sys.exit(1 if failed else 0)
